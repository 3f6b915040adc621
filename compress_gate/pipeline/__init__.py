"""``compress-gate run``: from a recipe to a released (or refused) bundle, stage by stage."""

from compress_gate.pipeline.run import RunOutcome, mask_digests, run_recipe

__all__ = ["RunOutcome", "mask_digests", "run_recipe"]

"""Bootstrap resamples of the gated numbers: one (B, n) weight matrix, chunked, no loop over samples."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compress_gate import metrics
from compress_gate.config.gate import GateConfig
from compress_gate.gate._fairgrape_measures import PAIR_MEASURES
from compress_gate.gate._measures import Measurer

__all__ = ["Resamples", "bootstrap"]

@dataclass(frozen=True)
class Resamples:
    """Per-resample values: ``values[(population, metric)]`` (B, U),
    ``balance[population]["cev" | "sde"]`` (B,) and ``pairs[metric]`` (B, U) of the judged
    population against the teacher (teacher-pair metrics)."""

    values: dict[tuple[str, str], np.ndarray]
    balance: dict[str, dict[str, np.ndarray]]
    pairs: dict[str, np.ndarray] = field(default_factory=dict)


def bootstrap(measurer: Measurer, config: GateConfig, *, judged: str, metrics_wanted: list[str],
              balance_keys: list[str], pair_metrics: tuple[str, ...] | list[str] = ()) -> Resamples | None:
    """Resample the test rows ``config.n_resamples`` times (seeded) and measure.

    For each metric in ``metrics_wanted`` the teacher and the ``judged`` population are
    measured with the same weights (a paired bootstrap); CEV and SDE are measured for
    each population in ``balance_keys``; each teacher-pair metric in ``pair_metrics`` for the
    ``judged`` population against the teacher. None when ``config.n_resamples`` is 0. The chunk
    size is the metrics' default (a bounded weight matrix); each chunk's weight matrix is
    shared by every call, so the metrics can reuse their count tables within it.
    """
    if config.n_resamples == 0:
        return None
    n = measurer.test.y_true.shape[0]
    values: dict[tuple[str, str], list[np.ndarray]] = {
        (key, metric): [] for metric in metrics_wanted for key in ("teacher", judged)}
    balance: dict[str, dict[str, list[np.ndarray]]] = {key: {"cev": [], "sde": []} for key in balance_keys}
    pairs: dict[str, list[np.ndarray]] = {metric: [] for metric in pair_metrics}
    for weights in metrics.bootstrap_weights(n, n_resamples=config.n_resamples, seed=config.seed):
        measurer.start_chunk()
        for key, metric in values:
            values[key, metric].append(measurer.values(key, metric, weights))
        for key in balance_keys:
            cev, sde, _, _ = measurer.error_balance(key, weights)
            balance[key]["cev"].append(cev)
            balance[key]["sde"].append(sde)
        for metric in pairs:
            pairs[metric].append(PAIR_MEASURES[metric](measurer, judged, weights, config.seed))
        del weights                      # free this chunk before the next one is drawn
    measurer.start_chunk()
    return Resamples(values={k: np.concatenate(v, axis=0) for k, v in values.items()},
                     balance={k: {m: np.concatenate(v) for m, v in d.items()} for k, d in balance.items()},
                     pairs={k: np.concatenate(v, axis=0) for k, v in pairs.items()})

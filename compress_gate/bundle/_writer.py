"""Write the release bundle on a pass, or the refusal on a fail (DESIGN.md, "Release bundle").

A pass writes ``<run>/release/``: ``model.onnx`` (stamped with the verdict and recipe
hash in its ONNX ``metadata_props``), ``thresholds.json``, ``overrides.json``,
``report.json``, ``report.html``, ``junit.xml``, ``MODEL_CARD.md`` and
``manifest.json``. A fail writes ``<run>/refused/`` with the same report files and no
model. Both are assembled in a temporary directory and renamed into place, so a
half-written bundle never looks complete; writing one removes a stale other one, so a
run directory never shows ``release/`` beside a refusal. Files and directories get the
modes of normally created ones (0666 / 0777 less the umask; see :mod:`compress_gate._atomic`).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from compress_gate import __version__
from compress_gate._atomic import atomic_directory, write_bytes
from compress_gate.bundle._manifest import MANIFEST_NAME, dependency_versions, manifest_bytes
from compress_gate.errors import RuntimeFailure

__all__ = ["REPORT_FILES", "RELEASE_FILES", "METADATA_PREFIX", "write_release", "write_refusal"]

REPORT_FILES = ("report.json", "report.html", "junit.xml", "MODEL_CARD.md")
RELEASE_FILES = ("model.onnx", "thresholds.json", "overrides.json", *REPORT_FILES, MANIFEST_NAME)
METADATA_PREFIX = "compress_gate."


def _copy_gate_outputs(gate_dir: Path, names: tuple[str, ...], into: Path) -> None:
    for name in names:
        source = gate_dir / name
        if not source.is_file():
            raise RuntimeFailure(f"{source}: the gate stage did not write it, so no bundle can be "
                                 f"assembled. The gate outputs so far are kept in {gate_dir}.")
        shutil.copyfile(source, into / name)


def stamp_onnx(source: Path, target: Path, metadata: dict[str, str]) -> None:
    """Copy the ONNX model ``source`` to ``target`` with ``metadata`` added to ``metadata_props``.

    Keys are prefixed with ``compress_gate.``; an existing entry of the same key is replaced.
    """
    import onnx

    model = onnx.load(str(source))
    keep = [p for p in model.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        model.metadata_props.add(key=METADATA_PREFIX + key, value=str(value))
    write_bytes(target, model.SerializeToString())


def write_release(run_dir: str | Path, *, gate_dir: str | Path, model_onnx: str | Path,
                  recipe_hash: str, seed: int, metrics_summary: dict[str, Any],
                  model_info: dict[str, Any]) -> Path:
    """Assemble ``<run_dir>/release/`` from the gate outputs and the shipped ONNX model.

    ``model_info`` describes what ships (engine, artefact format, input shape, task,
    attribute names, ``preprocess``: the input normalisation, also stamped into ``model.onnx``
    as ``compress_gate.preprocess``) and is stored in the manifest under ``model``. Returns the bundle path.
    """
    run_dir, gate_dir = Path(run_dir), Path(gate_dir)
    target = run_dir / "release"
    with atomic_directory(target) as tmp:
        _copy_gate_outputs(gate_dir, ("thresholds.json", "overrides.json", *REPORT_FILES), tmp)
        stamp = {"verdict": "pass", "recipe_hash": recipe_hash, "seed": str(seed), "version": __version__}
        if model_info.get("preprocess") is not None:  # the input normalisation the runtime applies
            stamp["preprocess"] = json.dumps(model_info["preprocess"], sort_keys=True)
        stamp_onnx(Path(model_onnx), tmp / "model.onnx", stamp)
        fields = {
            "schema_version": 1,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "compress_gate_version": __version__,
            "verdict": "pass",
            "recipe_hash": recipe_hash,
            "seed": seed,
            "model": {"file": "model.onnx", **model_info},
            "metrics_summary": metrics_summary,
            "dependencies": dependency_versions(),
        }
        (tmp / MANIFEST_NAME).write_bytes(manifest_bytes(tmp, fields))
    shutil.rmtree(run_dir / "refused", ignore_errors=True)
    return target


def write_refusal(run_dir: str | Path, *, gate_dir: str | Path) -> Path:
    """Write ``<run_dir>/refused/`` with the gate's report files and remove any stale ``release/``."""
    run_dir, gate_dir = Path(run_dir), Path(gate_dir)
    shutil.rmtree(run_dir / "release", ignore_errors=True)
    target = run_dir / "refused"
    with atomic_directory(target) as tmp:
        _copy_gate_outputs(gate_dir, REPORT_FILES, tmp)
    return target

"""``compress-gate predict``'s files: an inputs ``.npz`` in, a predictions ``.npz`` out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress_gate._outdir import output_file
from compress_gate.bundle._runtime import BundlePrediction, GatedModel
from compress_gate.data.contract import INPUT_COLUMNS, read_npz_columns, select_columns
from compress_gate.errors import InputError

__all__ = ["predict_npz"]


def _read_inputs(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``inputs`` (N, ...) and optional ``ids`` (N,) str from an npz; no other column is read.

    Other columns (a whole ``data.npz`` may be given) are left unread, except one that
    looks like a misspelled ``ids`` or ``inputs`` (``IDs``, ``input``): that is an error,
    since a dropped ``ids`` column would silently change which overrides apply.
    """
    source = str(path)
    columns = read_npz_columns(path, "inputs", save_hint="numpy.savez(path, inputs=x) (and ids=... for "
                               "dataset ids)", select=lambda names: select_columns(
                                   names, known=INPUT_COLUMNS, extra_columns=(), source=source,
                                   what="inputs file", ignore_others=True))
    if "inputs" not in columns:
        raise InputError(f"{path}: missing the `inputs` array (found: {', '.join(sorted(columns)) or 'none'}). "
                         "Save the preprocessed model inputs as numpy.savez(path, inputs=x).")
    ids = columns.get("ids")
    if ids is not None:
        if ids.dtype.kind not in "USiu":
            raise InputError(f"{path}: `ids` has dtype {ids.dtype}; it must hold strings (or integers). Save "
                             "numpy.asarray(ids, dtype=str).")
        ids = np.asarray(ids).astype(str)
    return columns["inputs"], ids


def predict_npz(bundle: str | Path, inputs_path: str | Path, out_path: str | Path | None = None, *,
                engine: str = "onnxruntime") -> tuple[BundlePrediction, Path]:
    """Verify ``bundle``, predict the ``inputs`` of ``inputs_path``, write the predictions npz.

    The output (default ``<inputs>.preds.npz`` beside the inputs) holds ``ids``, ``scores``
    (N, K) float32, ``labels`` (N, K) uint8 after thresholds and overrides, ``overridden``
    (N,) bool and ``attribute_names`` (K,). The output path is checked before any work
    (only an absent path or a regular file is replaced, see :mod:`compress_gate._outdir`);
    a call that fails removes a stale output of an earlier call. An output that is the
    inputs file or lies inside the bundle is refused before anything is written.

    Raises
    ------
    InputError
        A tampered or incomplete bundle; a missing, empty, ``.npy`` or unreadable inputs
        file; inputs of the wrong shape or not float32; repeated ids; an output path that
        is not a writable regular file, or that is an input or lies inside the bundle.
    """
    inputs_path = Path(inputs_path)
    out = Path(out_path) if out_path is not None else inputs_path.with_suffix(".preds.npz")
    with output_file(out, what="predictions file (--out)", example="preds.npz",
                     inputs={"release bundle": bundle, "inputs file": inputs_path}) as tmp:
        inputs, ids = _read_inputs(inputs_path)
        with GatedModel.load(bundle, engine=engine) as model:
            prediction = model.predict(inputs, ids=ids)
            names = np.asarray(model.attribute_names, dtype=str)
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=prediction.ids, scores=prediction.scores, labels=prediction.labels,
                     overridden=prediction.overridden, attribute_names=names)
    return prediction, out

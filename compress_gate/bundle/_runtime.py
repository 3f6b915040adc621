"""The shipped runtime: a verified release bundle that applies thresholds, then overrides.

:class:`GatedModel` predicts what the gate judged: the bundle's ``model.onnx`` on
the chosen engine (ONNX Runtime by default; DeepSparse opt-in), labels by the
bundle's thresholds (multi-label: ``score > t_i``; multi-class: argmax), then the
bundle's overrides replace the labels of the samples they name. A sample is named
by its dataset id when the caller gives ids, else by :func:`compress_gate.data.sample_id`
of its preprocessed input tensor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate.bundle._manifest import verify_bundle
from compress_gate.bundle._writer import METADATA_PREFIX, RELEASE_FILES
from compress_gate.data.identity import sample_id
from compress_gate.errors import InputError
from compress_gate.metrics import predict_labels
from compress_gate.mitigation import (
    apply_overrides,
    overridden_rows,
    read_overrides,
    read_thresholds,
)

__all__ = ["GatedModel", "BundlePrediction"]


@dataclass(frozen=True)
class BundlePrediction:
    """What :meth:`GatedModel.predict` returns.

    Attributes
    ----------
    ids : ndarray of shape (n_samples,), str — the ids the overrides were looked up by
    scores : ndarray of shape (n_samples, n_attributes), float32 — the engine's scores
    labels : ndarray of shape (n_samples, n_attributes), uint8 0/1 — after thresholds and
        overrides (one-hot for multi-class)
    overridden : ndarray of shape (n_samples,), bool — rows an override changed or confirmed
    """

    ids: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    overridden: np.ndarray


class GatedModel:
    """A release bundle, verified, ready to predict. Build it with :meth:`GatedModel.load`."""

    def __init__(self, bundle_dir: Path, manifest: dict[str, Any], engine: Any, *,
                 thresholds: np.ndarray | None, overrides: dict[str, dict[str, int | str]],
                 preprocess: dict[str, Any] | None = None) -> None:
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.engine = engine
        self.thresholds = thresholds
        self.overrides = overrides
        model = manifest["model"]
        self.task: str = model["task"]
        self.attribute_names: tuple[str, ...] = tuple(model["attribute_names"])
        self.input_shape: tuple[int, ...] = tuple(model["input_shape"])
        #: The input normalisation recorded at export (``compress_gate.preprocess``), or None.
        self.preprocess = preprocess

    @classmethod
    def load(cls, path: str | Path, engine: str = "onnxruntime", *, batch_size: int = 32,
             num_threads: int | None = None) -> GatedModel:
        """Verify every checksum of the bundle at ``path`` and open its model on ``engine``.

        ``engine="deepsparse"`` is opt-in (its licence allows evaluation only). When DeepSparse is
        missing or cannot run the graph (its embedded loader rejects some QDQ graphs), the model
        runs on ONNX Runtime instead, with a ``RuntimeWarning`` saying why; :attr:`engine_kind`
        tells which engine runs. Either way the predictions are those of the judged ``model.onnx``.

        Raises
        ------
        InputError
            A file is missing, unlisted or its SHA-256 differs (the message names it), the
            bundle is not a passed release, or its thresholds/overrides do not fit the model.
        RuntimeFailure
            The engine (ONNX Runtime, or DeepSparse's fallback) could not run the model.
        """
        bundle_dir = Path(path)
        manifest = verify_bundle(bundle_dir)
        missing = [name for name in RELEASE_FILES if name not in manifest["files"] and name != "manifest.json"]
        if missing:
            raise InputError(f"{bundle_dir}: not a complete release bundle; it lacks {', '.join(missing)}. "
                             "Use the `release/` directory of a run that passed the gate.")
        preprocess = _check_model_stamp(bundle_dir / "model.onnx", manifest)
        model = manifest["model"]
        thresholds = read_thresholds(bundle_dir / "thresholds.json")
        overrides = read_overrides(bundle_dir / "overrides.json")
        for name, doc in (("thresholds.json", thresholds), ("overrides.json", overrides)):
            if doc.task != model["task"] or tuple(doc.attribute_names) != tuple(model["attribute_names"]):
                raise InputError(f"{bundle_dir / name}: written for task {doc.task!r} and attributes "
                                 f"{list(doc.attribute_names)[:6]}, but the model is {model['task']!r} with "
                                 f"{list(model['attribute_names'])[:6]}. The bundle mixes files of two runs.")
        from compress_gate.engines import open_engine_with_fallback

        opened = open_engine_with_fallback(engine, bundle_dir / "model.onnx", batch_size=batch_size,
                                           num_threads=num_threads)
        return cls(bundle_dir, manifest, opened, thresholds=thresholds.thresholds,
                   overrides=overrides.overrides, preprocess=preprocess)

    @property
    def engine_kind(self) -> str:
        """The engine that runs the model (``onnxruntime`` after a DeepSparse fallback)."""
        return str(self.engine.kind)

    @property
    def verdict(self) -> str:
        """The gate's verdict recorded in the manifest (always ``"pass"`` for a loadable bundle)."""
        return str(self.manifest["verdict"])

    @property
    def recipe_hash(self) -> str:
        """SHA-256 of the recipe that produced the bundle."""
        return str(self.manifest["recipe_hash"])

    def predict_scores(self, inputs: np.ndarray) -> np.ndarray:
        """The engine's scores (n_samples, n_attributes) for preprocessed ``inputs`` (n, *input_shape)."""
        from compress_gate.engines import predict_scores

        return predict_scores(self.engine, self._check_inputs(inputs))

    def predict(self, inputs: np.ndarray, *, ids: np.ndarray | None = None) -> BundlePrediction:
        """Scores, then labels by the thresholds, then the overrides of the samples' ids.

        ``ids`` (n_samples,) are dataset ids, unique (a repeated id is an
        :class:`InputError` naming it and its rows); without them each row's id is
        ``sample_id(inputs[i])`` of the float32 tensor, as the data loaders assign it
        to inputs without a dataset id. ``inputs`` must be float32 (never cast).
        """
        inputs = self._check_inputs(inputs)
        if ids is None:
            ids = np.asarray([sample_id(row) for row in inputs], dtype=str)
        else:
            ids = np.asarray(ids, dtype=str)
            if ids.shape != (inputs.shape[0],):
                raise InputError(f"ids has shape {ids.shape}; it must be ({inputs.shape[0]},), one id per "
                                 "input row.")
            uniq, counts = np.unique(ids, return_counts=True)
            if uniq.size != ids.size:
                repeated = uniq[counts > 1]
                shown = ", ".join(f"{str(v)!r} (rows {np.flatnonzero(ids == v).tolist()[:5]})" for v in repeated[:5])
                raise InputError(f"ids must be unique, one per sample: {repeated.size} id(s) repeat, e.g. "
                                 f"{shown}. An override is looked up by id, so a repeated id would give its "
                                 "label to every row that carries it; give each sample its own id, or "
                                 "leave ids out (each row is then identified by its input's SHA-256).")
        scores = self.predict_scores(inputs)
        labels = predict_labels(scores, task=self.task, thresholds=self.thresholds)
        labels = apply_overrides(ids, labels, self.overrides, self.attribute_names).astype(np.uint8)
        return BundlePrediction(ids=ids, scores=scores, labels=labels,
                                overridden=overridden_rows(ids, self.overrides))

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """Model inputs from ``pixels`` in [0, 1], (n, *input_shape), by the recorded normalisation.

        .. math:: x_c = (p_c - \\mathrm{mean}_c) / \\mathrm{std}_c

        with the ``mean``/``std`` export stored in ``model.onnx`` (float32 arithmetic, as in training).

        Raises
        ------
        InputError
            The bundle records no normalisation (its model was trained on given preprocessed
            arrays), or ``pixels`` has another shape or values outside [0, 1].
        """
        record = self.preprocess or {}
        if record.get("mean") is None:
            raise InputError(f"{self.bundle_dir}: the model records no input normalisation (it was trained on "
                             "preprocessed arrays); pass inputs preprocessed as in training to predict().")
        pixels = np.asarray(pixels, dtype=np.float32)
        if pixels.shape[1:] != self.input_shape:
            raise InputError(f"pixels have shape {pixels.shape}; this model takes (n, "
                             f"{', '.join(map(str, self.input_shape))}) pixel values in [0, 1].")
        if pixels.size and not (np.nanmin(pixels) >= 0 and np.nanmax(pixels) <= 1):
            raise InputError("pixels must lie in [0, 1] (divide 8-bit images by 255).")
        shape = (1, -1) + (1,) * (pixels.ndim - 2)
        mean = np.asarray(record["mean"], dtype=np.float32).reshape(shape)
        std = np.asarray(record["std"], dtype=np.float32).reshape(shape)
        return np.ascontiguousarray((pixels - mean) / std, dtype=np.float32)

    def predict_pixels(self, pixels: np.ndarray, *, ids: np.ndarray | None = None) -> BundlePrediction:
        """:meth:`predict` on :meth:`normalize` ``(pixels)``: images as pixels in [0, 1]."""
        return self.predict(self.normalize(pixels), ids=ids)

    def _check_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """``inputs`` as a C-contiguous float32 array, or InputError: other dtypes are never cast.

        Raw pixels (uint8, int64) or float64 would be cast silently to values the model
        was not trained on, and ids derived from the input bytes would change.
        """
        arr = np.asarray(inputs)
        if arr.shape[1:] != self.input_shape:
            raise InputError(f"inputs have shape {arr.shape} and dtype {arr.dtype}; this model takes "
                             f"(n, {', '.join(map(str, self.input_shape))}) float32 preprocessed inputs.")
        if arr.dtype != np.float32:
            raise InputError(f"inputs have dtype {arr.dtype}; this model takes float32 preprocessed inputs, "
                             "and other dtypes are not cast. Apply the model's preprocessing (e.g. raw pixels "
                             "scaled as in training), then convert: x.astype('float32').")
        if not np.isfinite(arr).all():
            raise InputError("inputs hold NaN or inf; fix the preprocessing (the model's scores would be "
                             "meaningless).")
        return np.ascontiguousarray(arr)

    def close(self) -> None:
        """Release the engine (ends DeepSparse's worker process)."""
        self.engine.close()

    def __enter__(self) -> GatedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_model_stamp(model_path: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The verdict and recipe hash in ``model.onnx``'s metadata must match the manifest's.

    Returns the input normalisation recorded in the metadata (``compress_gate.preprocess``), or None.
    """
    import onnx

    try:
        props = {p.key: p.value for p in onnx.load(str(model_path), load_external_data=False).metadata_props}
    except Exception as err:  # onnx raises DecodeError and others for corrupt files
        raise InputError(f"{model_path}: not a readable ONNX model ({err}).") from err
    stamp = {"verdict": props.get(METADATA_PREFIX + "verdict"),
             "recipe_hash": props.get(METADATA_PREFIX + "recipe_hash")}
    if stamp != {"verdict": "pass", "recipe_hash": manifest.get("recipe_hash")} or manifest.get("verdict") != "pass":
        raise InputError(f"{model_path}: its metadata says verdict {stamp['verdict']!r}, recipe hash "
                         f"{stamp['recipe_hash']!r}; the manifest says {manifest.get('verdict')!r}, "
                         f"{manifest.get('recipe_hash')!r}. Only a model that passed the gate ships; "
                         "use the bundle `compress-gate run` released.")
    text = props.get(METADATA_PREFIX + "preprocess")
    try:
        return None if text is None else dict(json.loads(text))
    except (ValueError, TypeError) as err:
        raise InputError(f"{model_path}: its `compress_gate.preprocess` metadata is not a JSON object ({err}). "
                         "Use the bundle `compress-gate run` released.") from err

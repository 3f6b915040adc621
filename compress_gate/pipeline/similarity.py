"""The run's representation-similarity step: teacher vs student, per layer, on a fixed calib subset.

After compression, while both torch models exist, :func:`run_similarity` compares them
layer by layer with linear CKA and SVCCA (:mod:`compress_gate.metrics.similarity`,
through :func:`compress_gate.models.layer_similarity.layer_similarity`) and writes
``<run>/similarity.json``; the report stage puts the same facts in the typed report
(``run.similarity``, :class:`~compress_gate.report.schema.SimilaritySection`) before it is
rendered, so ``report.html`` shows the per-layer table and ``MODEL_CARD.md`` the means.
Blakeney et al. ("Simon Says") relate SVCCA between a pruned and its dense model to the
bias that pruning induces; a sweep plots the two.

**Layers**: each residual stage's output, the model's top-level ``layer<i>`` modules (the
ResNets' stages, MobileNetV1's blocks), in the teacher's module order. A stage output
(n, C, H, W) is averaged over H and W to (n, C), its per-channel means, so the feature
count (at most a few hundred) stays well below the number of rows and SVCCA's 99 %
subspaces cannot meet by chance (with flattened maps, n <= m_x + m_y forces correlations
near 1). The last stage's per-channel means are exactly the penultimate features (the
global average pool the classifier reads), so that layer is not listed twice. Widths may
differ (a channel-pruned student): both measures compare (n, C_teacher) with (n, C_student).

**Rows**: ``SIMILARITY_ROWS`` = 512 calib rows drawn without replacement by
``numpy.random.default_rng(seed)`` (all calib rows when there are fewer), sorted, so the
subset is the same for every student of a recipe. The student is the torch model the
backend returned (SparseML's QAT fake-quantize modules included; the torch backend's
post-training INT8 is applied to the ONNX graph later and so is not seen here). A torch-backend
QAT student (:class:`~compress_gate.compress.torch_backend.qat.QATStudent`) is a traced graph
without ``layer<i>`` modules, so its ``float_model`` is compared: the same trained weights
(BatchNorms folded) without fake quantization; ``similarity.json`` says so (``"student":
"qat float twin"``).

``similarity.json``::

    {"n_rows": 512, "seed": 0, "split": "calib", "keep": 0.99, "pooling": "spatial mean",
     "student": "model", "layers": {"layer1": {"cka": 0.98, "svcca": 0.91}, "layer2": ..., "layer3": ...},
     "mean": {"cka": ..., "svcca": ...}, "seconds": 0.4}

``mean`` is over the layers where the value is defined; a layer whose output is constant
over the rows has ``null`` (undefined), and ``mean`` is ``null`` when no layer is defined.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate._atomic import write_json
from compress_gate.errors import InputError
from compress_gate.pipeline._record import json_ready

if TYPE_CHECKING:
    import torch

    from compress_gate.data.contract import EvalData

__all__ = ["SIMILARITY_ROWS", "SIMILARITY_FILE", "similarity_layers", "similarity_rows", "compare_models",
           "run_similarity"]

SIMILARITY_ROWS = 512
SIMILARITY_FILE = "similarity.json"
_STAGE = re.compile(r"^layer\d+$")
_KEEP = 0.99


def similarity_layers(teacher: torch.nn.Module, student: torch.nn.Module) -> list[str]:
    """The feature stages of ``teacher`` that ``student`` also has, in order: ``teacher.feature_layers``
    (the recipe's ``model.layers``) when it carries them, else its top-level ``layer<i>`` modules.

    Raises
    ------
    InputError
        Neither source names a module the student has too.
    """
    in_student = {name for name, _ in student.named_modules()}
    stages = getattr(teacher, "feature_layers", None) or [
        name for name, _ in teacher.named_children() if _STAGE.match(name)]
    names = [name for name in stages if name in in_student]
    if not names:
        raise InputError(f"the teacher ({type(teacher).__name__}) has no feature stage (`model.layers`, or "
                         "top-level `layer<i>` modules) that the student has too, so no representation "
                         "similarity can be measured. List its stages' module paths in `model.layers`.")
    return names


def similarity_rows(data: EvalData, *, seed: int, n_rows: int = SIMILARITY_ROWS) -> np.ndarray:
    """Indices (sorted) of ``n_rows`` calib rows of ``data`` drawn with ``default_rng(seed)``; all when fewer."""
    calib = np.flatnonzero(data.mask("calib"))
    if len(calib) <= n_rows:
        return calib
    return np.sort(np.random.default_rng(seed).choice(calib, size=n_rows, replace=False))


def _mean(values: list[float]) -> float | None:
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else None


def compare_models(teacher: torch.nn.Module, student: torch.nn.Module, inputs: np.ndarray) -> dict[str, Any]:
    """Per-layer linear CKA and SVCCA of ``teacher`` and ``student`` on ``inputs``.

    The layers are :func:`similarity_layers`; each stage output is averaged over space to its
    per-channel means, and SVCCA keeps 99 % of each representation's variance.

    Returns ``{"layers": {name: {"cka", "svcca"}}, "mean": {"cka", "svcca"}}``; an undefined
    value is ``nan`` per layer, and a mean over no defined layer is ``None``.
    """
    import torch

    from compress_gate.models.layer_similarity import layer_similarity

    device = next(teacher.parameters()).device     # the run's `device`: both models are there
    batch = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)).to(device)
    layers = layer_similarity(teacher, student, batch, layers=similarity_layers(teacher, student), keep=_KEEP,
                              spatial_mean=True)
    mean = {key: _mean([row[key] for row in layers.values()]) for key in ("cka", "svcca")}
    return {"layers": layers, "mean": mean}


def run_similarity(teacher: torch.nn.Module, student: torch.nn.Module, data: EvalData, *, seed: int,
                   run_dir: Path) -> dict[str, Any]:
    """Compare the models on the fixed calib subset and write ``run_dir/similarity.json`` (atomically)."""
    if data.inputs is None:
        raise InputError("representation similarity needs the preprocessed inputs, and the eval data has no "
                         "`inputs` column; the run's data loader always provides it, so this is a bug in the data "
                         "stage.")
    start = time.perf_counter()
    rows = similarity_rows(data, seed=seed)
    float_twin = getattr(student, "float_model", None)      # a torch-backend QAT student: its float twin
    inputs = data.inputs[rows][:]     # at most SIMILARITY_ROWS rows: streamed image files are decoded here
    found = compare_models(teacher, student if float_twin is None else float_twin, inputs)
    facts = {"n_rows": int(len(rows)), "seed": seed, "split": "calib", "keep": _KEEP, "pooling": "spatial mean",
             "student": "model" if float_twin is None else "qat float twin",
             **found, "seconds": round(time.perf_counter() - start, 3)}
    write_json(run_dir / SIMILARITY_FILE, json_ready(facts))
    return facts


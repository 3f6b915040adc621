"""The SparseML backend: a SparseML 1.8 recipe compresses the student; three graphs serve the engines.

Everything SparseML-specific sits behind this :class:`~compress_gate.compress.backend.Compressor`:
the recipe (:func:`~compress_gate.compress.sparsify.compress_model`), the torch 2.13 shims
(:mod:`~compress_gate.compress.compat`, applied there), the modifiers' private attributes
read for the pruning targets, and the QAT exports. Student artefacts in the export directory:

==========================  ==========================================  ===========================
file                        what                                        engines
==========================  ==========================================  ===========================
``student.onnx``            student FP32 (for a QAT student: its float  all, when not quantized
                            twin, fake quantization off)
``student.ort.onnx``        QAT student: ``student.onnx`` quantized by  ONNX Runtime (CPU/GPU)
                            ONNX Runtime's static QDQ quantizer,
                            calibrated on calib inputs (unused opset
                            imports dropped)
``student.deepsparse.onnx`` QAT student: SparseML's converted INT8      DeepSparse
                            graph
==========================  ==========================================  ===========================

Parity (max |score difference| against the torch model on the ``sample`` inputs): FP32
graphs within ``parity_atol``; the SparseML INT8 graph within ``quantized_parity_atol``
of the fake-quantized model; the ONNX Runtime QDQ graph (a re-quantization of the float
twin, so a different model by up to a quantization step) within ``requantized_parity_atol``.
A larger difference stops the run (exit 3).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.compress.backend import write_parity
from compress_gate.config.run import ExportConfig, SparseMLCompressionConfig
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

    from compress_gate.compress.backend import CompressionResult

__all__ = ["SparseMLCompressor", "student_artefacts", "set_final_sparsity"]

_FINAL_SPARSITY = re.compile(r"^final_sparsity:[^\n]*$", re.MULTILINE)


def set_final_sparsity(text: str, sparsity: float, *, source: str | Path) -> str:
    """The SparseML recipe ``text`` with its top-level ``final_sparsity:`` line set to ``sparsity``.

    The pruning modifiers read the variable as ``final_sparsity: eval(final_sparsity)``; only the
    top-level line changes, so the student's recipe is the sweep's recipe but for that value.

    Raises
    ------
    InputError
        The recipe defines no top-level ``final_sparsity`` variable.
    """
    if not _FINAL_SPARSITY.search(text):
        raise InputError(f"{source}: a sweep sets the SparseML recipe's top-level variable `final_sparsity`, but "
                         "the recipe (compression.recipe or recipe_path) defines none. Add a line `final_sparsity: "
                         "0.9` at the top of the SparseML recipe and write `final_sparsity: eval(final_sparsity)` "
                         "in its pruning modifiers (as recipes/multilabel.yaml does).")
    return _FINAL_SPARSITY.sub(f"final_sparsity: {sparsity!r}", text, count=1)

def student_artefacts(fp32: Path, ort: Path | None, deepsparse: Path | None) -> dict[str, Path]:
    """Engine kind -> the student graph it runs, by the registry's ``artefact`` of each kind
    (:data:`compress_gate.engines.ENGINES`): ``"qdq"`` the ONNX Runtime QDQ graph,
    ``"converted-int8"`` SparseML's converted graph; the FP32 graph wherever the quantized
    one is absent (an FP32 student)."""
    from compress_gate.engines import ENGINES

    graphs = {"qdq": ort, "converted-int8": deepsparse}
    return {kind: graphs[entry.artefact] or fp32 for kind, entry in ENGINES.items()}


class SparseMLCompressor:
    """Runs the recipe's SparseML schedule and exports the student's graphs: ``student.onnx`` (FP32,
    or a QAT student's float twin), and for a QAT student ``student.ort.onnx`` (ONNX Runtime's
    static QDQ) and ``student.deepsparse.onnx`` (SparseML's INT8), each within its parity tolerance."""

    name = "sparseml"
    needs_groups = False

    def __init__(self, config: SparseMLCompressionConfig, export: ExportConfig) -> None:
        self.config, self.export_config = config, export

    def check_recipe(self) -> None:
        """Load the SparseML recipe as compression will (:func:`~compress_gate.compress.sparsify.check_recipe`):
        a typo in a modifier, key or value, or a schedule of no length, is refused before any work."""
        from compress_gate.compress import check_recipe

        try:
            check_recipe(self.config.source)
        except InputError as err:
            raise InputError(f"`compression.recipe`: {err}") from err

    def run_files(self) -> dict[str, str]:
        """``sparseml_recipe.yaml``: the SparseML recipe the run compresses with."""
        from compress_gate.compress.sparsify import load_recipe

        return {"sparseml_recipe.yaml": load_recipe(self.config.source)}

    def check_students(self, sparsities: Sequence[float], masks: Sequence[str], *, source: str | Path) -> None:
        """N:M masks are the torch backend's: refused here."""
        if masks:
            raise InputError(f"{source}: --mask {' '.join(masks)} sets the torch backend's N:M mask, but this "
                             "recipe uses the SparseML backend. Run N:M students from a recipe with `compression: "
                             "{backend: torch, pruning: {...}}` (e.g. recipes/torch/multilabel_sweep.yaml), or drop "
                             "--mask and sweep sparsities with --sparsity.")

    def student_compression(self, sparsity: float, *, mask: str | None = None,
                            source: str | Path) -> dict[str, Any]:
        """The section with the SparseML recipe inline, its ``final_sparsity`` set (:func:`set_final_sparsity`)."""
        from compress_gate.compress.sparsify import load_recipe

        raw = self.config.model_dump(mode="json", exclude_none=True, by_alias=True)
        raw.pop("recipe_path", None)
        raw["recipe"] = set_final_sparsity(load_recipe(self.config.source), sparsity, source=source)
        return raw

    def compress(self, teacher: torch.nn.Module, loader: Iterable[Any], *, task: str, seed: int,
                 progress: Callable[..., None] | None = None, checkpoint: Any = None,
                 placement: Any = None) -> CompressionResult:
        """:func:`~compress_gate.compress.sparsify.compress_model` with the recipe's settings;
        ``teacher`` feeds the ``!DistillationModifier`` when ``distillation`` is true. ``checkpoint`` is
        ignored: SparseML's modifiers keep state that cannot be restored, so a resumed run trains the
        student from its first epoch. ``placement``: where the student trains (default the CPU)."""
        from compress_gate.compress.sparsify import compress_model

        spec = self.config
        return compress_model(teacher, loader, spec.source, task=task,  # type: ignore[arg-type]
                              teacher=teacher if spec.distillation else None, seed=seed,
                              progress=progress, lr=spec.lr, optimizer=spec.optimizer, placement=placement)

    def export(self, result: CompressionResult, directory: Path, *, sample: np.ndarray, task: str,
               calib: np.ndarray | None) -> dict[str, Path]:
        """Export the student graphs into ``directory``, check and record their parity.

        Raises
        ------
        InputError
            A QAT student but no calibration inputs for ONNX Runtime's quantizer.
        RuntimeFailure
            An exporter or quantizer failed, or an artefact's parity exceeds its tolerance.
        """
        from compress_gate.compress import check_parity, export_onnx, quantize_for_ort

        config, student = self.export_config, result.model
        directory = Path(directory)
        input_shape = tuple(sample.shape[1:])
        parity: dict[str, dict[str, Any]] = {}

        def check(model: torch.nn.Module, path: Path, atol: float, reference: str) -> None:
            difference = check_parity(model, path, sample, task=task, atol=atol)
            parity[path.name] = {"max_score_difference": difference, "tolerance": atol, "reference": reference}

        fp32_path = export_onnx(student, directory / "student.onnx", input_shape=input_shape, task=task,
                                opset=config.opset)
        if not result.quantized:
            check(student, fp32_path, config.parity_atol, "student (torch, FP32)")
            write_parity(directory, parity)
            return student_artefacts(fp32_path, None, None)
        if calib is None or len(calib) == 0:
            raise InputError("the SparseML recipe quantizes the student (QuantizationModifier), and ONNX Runtime's "
                             "INT8 graph is calibrated on the data's `calib` split, which is empty. Give the data "
                             "calib rows, or remove the QuantizationModifier.")
        # check_parity compares an FP32 graph with compress.float_twin(student): BN folded, fake quantization off
        check(student, fp32_path, config.parity_atol, "student float twin (torch, fake quantization off)")
        ds_path = export_onnx(student, directory / "student.deepsparse.onnx", input_shape=input_shape, task=task,
                              quantized=True, opset=config.opset)
        check(student, ds_path, config.quantized_parity_atol, "student (torch, fake-quantized)")
        ort_path = quantize_for_ort(fp32_path, directory / "student.ort.onnx", calib)
        _drop_unused_opsets(ort_path)
        check(student, ort_path, config.requantized_parity_atol,
              "student float twin (torch; the QDQ graph re-quantizes it)")
        write_parity(directory, parity)
        return student_artefacts(fp32_path, ort_path, ds_path)


def _drop_unused_opsets(path: Path) -> None:
    """Remove opset imports of domains no node uses (rewritten atomically; the graph is unchanged).

    ONNX Runtime's quantizer stamps its QDQ graph with ``ai.onnx.ml`` opset 5 and several
    Microsoft/training domains it does not use; DeepSparse's loader refuses ``ai.onnx.ml``
    opset 5, so without this the shipped QDQ model could not run on DeepSparse at all.
    """
    import onnx

    from compress_gate._atomic import write_bytes

    model = onnx.load(str(path))
    used = {node.domain for node in model.graph.node} | {"", "ai.onnx"}
    keep = [opset for opset in model.opset_import if opset.domain in used]
    if len(keep) != len(model.opset_import):
        del model.opset_import[:]
        model.opset_import.extend(keep)
        write_bytes(path, model.SerializeToString())


"""Export teacher and student to the ONNX artefact each engine runs, and check parity.

Artefacts in ``<run>/onnx/`` (see :mod:`compress_gate.compress.export` for why):

==========================  ==========================================  ===========================
file                        what                                        engines
==========================  ==========================================  ===========================
``teacher.onnx``            dense teacher, FP32                         all
``student.onnx``            student FP32 (for a QAT student: its float  all, when not quantized
                            twin, fake quantization off)
``student.ort.onnx``        QAT student: ``student.onnx`` quantized by  ONNX Runtime (CPU/GPU)
                            ONNX Runtime's static QDQ quantizer,        (and DeepSparse, for the
                            calibrated on calib inputs (unused opset    runtime's opt-in engine)
                            imports dropped)
``student.deepsparse.onnx`` QAT student: SparseML's converted INT8      DeepSparse
                            graph
==========================  ==========================================  ===========================

Parity (max |score difference| against the torch model on ``parity_samples`` calib
inputs): FP32 graphs within ``parity_atol``; the SparseML INT8 graph within
``quantized_parity_atol`` of the fake-quantized model; the ONNX Runtime QDQ graph (a
re-quantization of the float twin, so a different model by up to a quantization step)
within ``requantized_parity_atol``. A larger difference stops the run (exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.config.run import ExportConfig

if TYPE_CHECKING:
    import torch

__all__ = ["ExportedModels", "export_models"]


@dataclass(frozen=True)
class ExportedModels:
    """Paths of the exported artefacts and the parity measured for each.

    ``student_for`` maps an engine kind to the student artefact it runs; ``parity``
    maps a file name to ``{"max_score_difference", "tolerance", "reference"}``.
    """

    teacher: Path
    student_fp32: Path
    student_ort: Path | None
    student_deepsparse: Path | None
    parity: dict[str, dict[str, Any]]

    def student_for(self, engine: str) -> Path:
        """The student artefact that ``engine`` runs (and, for the deployment engine, ships).

        A quantized student has one graph per :data:`~compress_gate.engines.ENGINES` entry's
        ``artefact`` (``"qdq"``: ``student_ort``; ``"converted-int8"``: ``student_deepsparse``);
        an FP32 student is ``student_fp32`` on every engine.
        """
        from compress_gate.engines import ENGINES

        quantized = {"qdq": self.student_ort, "converted-int8": self.student_deepsparse}
        return quantized[ENGINES[engine].artefact] or self.student_fp32

    def describe(self) -> dict[str, Any]:
        """JSON-able description for the report."""
        return {"teacher": self.teacher.name, "student_fp32": self.student_fp32.name,
                "student_ort": None if self.student_ort is None else self.student_ort.name,
                "student_deepsparse": None if self.student_deepsparse is None else self.student_deepsparse.name,
                "parity": self.parity}


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


def export_models(teacher: torch.nn.Module, student: torch.nn.Module, *, quantized: bool, task: str,
                  input_shape: tuple[int, ...], calib_inputs: np.ndarray, out_dir: Path,
                  config: ExportConfig) -> ExportedModels:
    """Export every artefact of the module docstring into ``out_dir`` and check each one's parity.

    Raises
    ------
    RuntimeFailure
        An exporter or quantizer failed, or an artefact's parity exceeds its tolerance.
    """
    from compress_gate.compress import check_parity, export_onnx, quantize_for_ort

    probe = np.ascontiguousarray(calib_inputs[: config.parity_samples], dtype=np.float32)
    parity: dict[str, dict[str, Any]] = {}

    def check(model: torch.nn.Module, path: Path, atol: float, reference: str) -> None:
        difference = check_parity(model, path, probe, task=task, atol=atol)
        parity[path.name] = {"max_score_difference": difference, "tolerance": atol, "reference": reference}

    teacher_path = export_onnx(teacher, out_dir / "teacher.onnx", input_shape=input_shape, task=task,
                               opset=config.opset)
    check(teacher, teacher_path, config.parity_atol, "teacher (torch, FP32)")
    fp32_path = export_onnx(student, out_dir / "student.onnx", input_shape=input_shape, task=task,
                            opset=config.opset)
    if not quantized:
        check(student, fp32_path, config.parity_atol, "student (torch, FP32)")
        return ExportedModels(teacher_path, fp32_path, None, None, parity)
    # check_parity compares an FP32 graph with compress.float_twin(student): BN folded, fake quantization off
    check(student, fp32_path, config.parity_atol, "student float twin (torch, fake quantization off)")
    ds_path = export_onnx(student, out_dir / "student.deepsparse.onnx", input_shape=input_shape, task=task,
                          quantized=True, opset=config.opset)
    check(student, ds_path, config.quantized_parity_atol, "student (torch, fake-quantized)")
    ort_path = quantize_for_ort(fp32_path, out_dir / "student.ort.onnx",
                                np.ascontiguousarray(calib_inputs, dtype=np.float32))
    _drop_unused_opsets(ort_path)
    check(student, ort_path, config.requantized_parity_atol,
          "student float twin (torch; the QDQ graph re-quantizes it)")
    return ExportedModels(teacher_path, fp32_path, ort_path, ds_path, parity)

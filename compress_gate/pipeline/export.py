"""Export the teacher, have the compression backend export the student, and collect parity.

Artefacts in ``<run>/onnx/``: ``teacher.onnx`` (the dense teacher, FP32, run by every
engine) and the student graphs the backend writes (for SparseML see
:mod:`compress_gate.compress.sparseml_backend`), with ``parity.json`` (each file's
max |score difference| against its torch model, the tolerance and the reference).
The teacher's parity is checked here against ``export.parity_atol``; the backend checks
its own artefacts. A larger difference stops the run (exit 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.config.run import ExportConfig
from compress_gate.data.image_files import ImageFiles
from compress_gate.errors import RuntimeFailure

if TYPE_CHECKING:
    import torch

    from compress_gate.compress import CompressionResult
    from compress_gate.compress.backend import Compressor

__all__ = ["ExportedModels", "export_models"]


@dataclass(frozen=True)
class ExportedModels:
    """Paths of the exported artefacts and the parity measured for each.

    ``students`` maps an engine kind to the student artefact it runs (the backend's
    export; it always has ``onnxruntime``); ``parity`` maps a file name to
    ``{"max_score_difference", "tolerance", "reference"}``.
    """

    teacher: Path
    students: Mapping[str, Path]
    parity: dict[str, dict[str, Any]]

    def student_for(self, engine: str) -> Path:
        """The student artefact that ``engine`` runs (and, for the deployment engine, ships):
        the backend's artefact for that engine, else its ONNX Runtime artefact."""
        return self.students.get(engine, self.students["onnxruntime"])

    def describe(self) -> dict[str, Any]:
        """JSON-able description for the report."""
        return {"teacher": self.teacher.name,
                "students": {kind: path.name for kind, path in self.students.items()},
                "parity": self.parity}


def export_models(teacher: torch.nn.Module, result: CompressionResult, compressor: Compressor, *, task: str,
                  input_shape: tuple[int, ...], calib_inputs: np.ndarray | ImageFiles, out_dir: Path,
                  config: ExportConfig) -> ExportedModels:
    """Export the teacher and check its parity, then the student through ``compressor``.

    Parity is measured on the first ``config.parity_samples`` calib inputs; the whole
    calib split calibrates a post-training quantizer (image files are decoded batch by batch).

    Raises
    ------
    RuntimeFailure
        An exporter or quantizer failed, an artefact's parity exceeds its tolerance,
        or the backend returned no ONNX Runtime artefact or recorded no parity.
    """
    from compress_gate.compress import check_parity, export_onnx
    from compress_gate.compress.backend import read_parity

    probe = np.ascontiguousarray(calib_inputs[: config.parity_samples], dtype=np.float32)  # a slice decodes
    teacher_path = export_onnx(teacher, out_dir / "teacher.onnx", input_shape=input_shape, task=task,
                               opset=config.opset)
    difference = check_parity(teacher, teacher_path, probe, task=task, atol=config.parity_atol)
    parity = {teacher_path.name: {"max_score_difference": difference, "tolerance": config.parity_atol,
                                  "reference": "teacher (torch, FP32)"}}
    students = compressor.export(result, out_dir, sample=probe, task=task,
                                 calib=calib_inputs if isinstance(calib_inputs, ImageFiles)
                                 else np.ascontiguousarray(calib_inputs, dtype=np.float32))
    if "onnxruntime" not in students:
        raise RuntimeFailure(f"the {compressor.name!r} backend exported no artefact for ONNX Runtime (it gave "
                             f"{sorted(students)}); the deployment default needs one. This is a bug in the backend.")
    parity.update(read_parity(out_dir, backend=compressor.name))
    return ExportedModels(teacher_path, dict(students), parity)

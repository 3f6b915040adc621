"""Which artefact each engine runs, the engine check's label agreement, and the QDQ opset clean-up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.compress.sparseml_backend import _drop_unused_opsets, student_artefacts
from compress_gate.pipeline.export import ExportedModels
from compress_gate.pipeline.predict import label_agreement


def test_each_engine_runs_its_own_student_artefact():
    quantized = ExportedModels(Path("t.onnx"), student_artefacts(Path("s.onnx"), Path("s.ort.onnx"),
                                                                 Path("s.ds.onnx")), {})
    assert quantized.student_for("onnxruntime") == Path("s.ort.onnx")
    assert quantized.student_for("onnxruntime-cuda") == Path("s.ort.onnx")
    assert quantized.student_for("deepsparse") == Path("s.ds.onnx")
    fp32 = ExportedModels(Path("t.onnx"), student_artefacts(Path("s.onnx"), None, None), {})
    assert {fp32.student_for(k) for k in ("onnxruntime", "deepsparse")} == {Path("s.onnx")}


def test_an_engine_the_backend_names_no_artefact_for_runs_the_onnxruntime_one():
    exported = ExportedModels(Path("t.onnx"), {"onnxruntime": Path("s.qdq.onnx")}, {})
    assert exported.student_for("deepsparse") == Path("s.qdq.onnx")
    assert exported.describe()["students"] == {"onnxruntime": "s.qdq.onnx"}


def test_label_agreement_multiclass_by_argmax():
    # argmax rows: [0, 1, 2, 1] vs [0, 1, 1, 1] -> 3 of 4 agree
    a = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    b = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.1, 0.5, 0.4], [0.2, 0.5, 0.3]])
    assert label_agreement(a, b, task="multiclass") == pytest.approx(0.75)


def test_label_agreement_multilabel_needs_the_whole_row():
    # rows at 0.5: [1,0] vs [1,0] agree; [1,1] vs [1,0] differ; [0,0] vs [0,0] agree -> 2/3
    a = np.array([[0.9, 0.2], [0.6, 0.7], [0.1, 0.4]])
    b = np.array([[0.7, 0.1], [0.8, 0.3], [0.2, 0.5]])
    assert label_agreement(a, b, task="multilabel") == pytest.approx(2 / 3)
    with pytest.raises(InputError, match="must be equal"):
        label_agreement(a, b[:2], task="multilabel")


def test_unused_opset_imports_are_dropped_and_the_graph_kept(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("ai.onnx.ml", 5),
                                                    helper.make_opsetid("com.microsoft", 1)])
    onnx.save(model, str(tmp_path / "m.onnx"))
    _drop_unused_opsets(tmp_path / "m.onnx")
    cleaned = onnx.load(str(tmp_path / "m.onnx"))
    assert [(o.domain, o.version) for o in cleaned.opset_import] == [("", 13)]
    assert cleaned.graph == model.graph

"""The run's similarity step: the layers, the fixed calib rows, similarity.json, and its typed section of the
report (``run.similarity``), rendered in report.html with everything else."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")  # needs torch: skipped in the core environment (make test-core)
import torch

from compress_gate.data._records import EvalData
from compress_gate.errors import InputError
from compress_gate.models.resnet import small_resnet
from compress_gate.models.mobilenet import MobileNetV1
from compress_gate.pipeline._record import json_ready
from compress_gate.pipeline.similarity import SIMILARITY_ROWS, run_similarity, similarity_layers, similarity_rows
from compress_gate.report.schema import SimilaritySection
from compress_gate.report.similarity import similarity_section


def eval_data(n_calib: int, *, n_other: int = 20, size: int = 8) -> EvalData:
    n = n_calib + n_other
    split = np.array(["train"] * (n_other // 2) + ["calib"] * n_calib + ["test"] * (n_other - n_other // 2))
    rng = np.random.default_rng(0)
    return EvalData(ids=np.array([f"r{i}" for i in range(n)]), labels=rng.integers(0, 2, (n, 2)).astype(np.uint8),
                    split=split, groups=np.zeros((n, 1), bool), group_names=("g",), attribute_names=("a", "b"),
                    task="multilabel", inputs=rng.normal(size=(n, 3, size, size)).astype(np.float32))


def model(width: int = 4, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return small_resnet(num_outputs=2, width=width, depth=1).eval()


def test_layers_are_the_stage_outputs():
    assert similarity_layers(model(), model()) == ["layer1", "layer2", "layer3"]
    mobile = MobileNetV1(num_outputs=2, alpha=0.25)
    assert similarity_layers(mobile, mobile) == [f"layer{i}" for i in range(1, 14)]
    with pytest.raises(InputError, match="has no feature stage"):
        similarity_layers(torch.nn.Sequential(torch.nn.ReLU()), torch.nn.Sequential(torch.nn.ReLU()))


def test_the_last_stage_pooled_is_the_penultimate_features():
    from compress_gate.models.layer_similarity import layer_similarity

    teacher, student = model(seed=0), model(seed=1)
    inputs = torch.from_numpy(eval_data(100).inputs)
    pooled = layer_similarity(teacher, student, inputs, layers=["layer3"], spatial_mean=True)["layer3"]
    features = layer_similarity(teacher, student, inputs, layers=["avgpool"])["avgpool"]   # the classifier's input
    assert pooled == pytest.approx(features)


def test_rows_are_a_fixed_seeded_sorted_calib_subset():
    data = eval_data(SIMILARITY_ROWS + 100)
    rows = similarity_rows(data, seed=3)
    assert len(rows) == SIMILARITY_ROWS == 512 and len(set(rows)) == 512
    assert (np.diff(rows) > 0).all() and (data.split[rows] == "calib").all()
    np.testing.assert_array_equal(rows, similarity_rows(data, seed=3))         # same seed: same rows
    assert not np.array_equal(rows, similarity_rows(data, seed=4))
    small = eval_data(50)
    np.testing.assert_array_equal(similarity_rows(small, seed=0), np.flatnonzero(small.split == "calib"))


def test_teacher_against_itself_is_one_on_every_layer_and_written_atomically(tmp_path):
    teacher = model()
    facts = run_similarity(teacher, teacher, eval_data(200), seed=0, run_dir=tmp_path)
    written = json.loads((tmp_path / "similarity.json").read_text())
    assert written["n_rows"] == 200 and written["split"] == "calib" and written["keep"] == 0.99
    assert list(written["layers"]) == ["layer1", "layer2", "layer3"]
    for row in written["layers"].values():
        assert row["cka"] == pytest.approx(1.0) and row["svcca"] == pytest.approx(1.0)
    assert written["mean"] == pytest.approx({"cka": 1.0, "svcca": 1.0})
    assert facts["seconds"] >= 0 and [p.name for p in tmp_path.iterdir()] == ["similarity.json"]


def test_a_different_and_narrower_student_is_less_similar_but_defined(tmp_path):
    # a channel-pruned student has fewer channels: (n, 16) vs (n, 8) at the last stage is fine
    facts = run_similarity(model(width=4, seed=0), model(width=2, seed=1), eval_data(300), seed=0, run_dir=tmp_path)
    for row in facts["layers"].values():
        assert 0.0 <= row["cka"] < 0.99 and 0.0 <= row["svcca"] < 0.99
    assert 0.0 < facts["mean"]["cka"] < 1.0


def test_a_constant_layer_is_undefined_and_left_out_of_the_mean(tmp_path):
    teacher, student = model(), model()
    with torch.no_grad():             # every BN of stage 3 outputs its bias: layer3 is constant
        for module in student.layer3.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.zero_()
                module.bias.fill_(1.0)
    facts = run_similarity(teacher, student, eval_data(100), seed=0, run_dir=tmp_path)
    written = json.loads((tmp_path / "similarity.json").read_text())
    assert written["layers"]["layer3"] == {"cka": None, "svcca": None}
    assert facts["mean"]["cka"] == pytest.approx((facts["layers"]["layer1"]["cka"] + facts["layers"]["layer2"]["cka"]) / 2)
    assert facts["mean"]["cka"] == pytest.approx(1.0)     # stages 1 and 2 are untouched


def test_the_facts_are_the_reports_typed_section_and_its_table(tmp_path):
    teacher, student = model(), model()
    with torch.no_grad():             # layer3 constant, as above: its values are undefined
        for module in student.layer3.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.zero_()
                module.bias.fill_(1.0)
    facts = run_similarity(teacher, student, eval_data(100), seed=0, run_dir=tmp_path)
    section = SimilaritySection(**json_ready(facts))        # what the run puts in report.json's run section
    assert section.model_dump(mode="json") == json.loads((tmp_path / "similarity.json").read_text())
    html = similarity_section(section)
    assert html.startswith('<section id="similarity">')
    assert f"<td>layer1</td><td>{facts['layers']['layer1']['cka']:.4f}</td>" in html
    assert '<td>layer3</td><td class="undefined">undefined</td><td class="undefined">undefined</td>' in html
    assert "mean over layers" in html and "100 fixed calib rows" in html

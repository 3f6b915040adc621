"""The reports rendered from the gate's real output (``compress_gate.gate.evaluate``), not a
hand-written fixture: the renderers and the report.json schema stay in step."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from compress_gate.config.gate import GateConfig
from compress_gate.data.contract import EvalData
from compress_gate.gate import evaluate
from compress_gate.report import render_html, write_junit, write_model_card

ATTRIBUTES = ("smiling", "eyeglasses", "wavy_hair", "bald")


@pytest.fixture(scope="module")
def gate_report() -> dict:
    # 300 train, 200 calib, 400 test rows; attributes co-occur with group `male` in training;
    # two students noisier than the teacher and pushed up on `male` rows (amplification).
    rng = np.random.default_rng(0)
    n = 900
    groups = rng.random((n, 2)) < [0.4, 0.5]
    labels = ((rng.random((n, 4)) < 0.35) | (groups[:, :1] & (rng.random((n, 4)) < 0.2))).astype(np.uint8)
    data = EvalData(ids=np.array([f"s{i}" for i in range(n)]), labels=labels,
                    split=np.array(["train"] * 300 + ["calib"] * 200 + ["test"] * 400), groups=groups,
                    group_names=("male", "young"), attribute_names=ATTRIBUTES, task="multilabel")
    scored = data.mask("calib", "test")
    y, male = labels[scored].astype(float), groups[scored][:, :1]

    def model(noise: float, shift: float) -> np.ndarray:
        return np.clip(0.5 * y + 0.25 + rng.normal(0, noise, y.shape) + shift * male, 0.001, 0.999
                       ).astype(np.float32)

    config = GateConfig.model_validate({"n_resamples": 200, "mitigation": {"override_budget": 0.02},
                                        "limits": [{"metric": "ba", "change": "absolute", "max": 0.02},
                                                   {"metric": "cev", "max": 50},
                                                   {"metric": "accuracy", "change": "absolute", "min": -0.02},
                                                   {"metric": "ap_mean", "min": 0.0}]})    # AP is computed
    return evaluate(data, model(0.2, 0.0), [model(0.27, 0.05), model(0.27, 0.05)], config).report


def test_html_from_the_gate(gate_report, tmp_path):
    page = render_html(gate_report, tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("<img ") == 4          # + FairGRAPE's AP-per-group figure (an AP limit)
    assert "Intervals only for what a limit gates: accuracy, ap_change_std, ap_mean, ap_std, ba, cev, group_ap, sde." in page
    for anchor in ("verdict", "error-balance", "bias-amplification", "uncertainty", "subgroups", "fairgrape",
                   "speed-vs-bias", "per-attribute", "mitigation", "engines", "provenance"):
        assert f'<section id="{anchor}">' in page
    # every value the gate wrote is one the renderer understands
    assert "not a number" not in page and ">None<" not in page and ">nan<" not in page
    for limit in gate_report.limits:
        assert html.escape(limit.name) in page


def test_model_card_from_the_gate(gate_report, tmp_path):
    text = write_model_card(gate_report, tmp_path / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "not a number" not in text and "None" not in text
    limits_table = text.split("Units of", 1)[0]           # then one table of units per limit
    assert (limits_table.count("| FAIL |") + limits_table.count("| pass |")
            + limits_table.count("| NOT ENOUGH EVIDENCE |") == len(gate_report.limits))


def test_junit_from_the_gate_validates(gate_report, tmp_path):
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema validates junit.xml; it is in the `test` extra")
    path = write_junit(gate_report, tmp_path / "junit.xml")
    xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit.xsd").validate(str(path))
    cases = ET.parse(path).getroot().findall(".//testcase")
    assert len(cases) == len(gate_report.limits)
    assert sum(c.find("failure") is not None for c in cases) == sum(not lim.passed for lim in gate_report.limits)

"""Smoke test of benchmarks/side_by_side.py's table logic on hand-made timings (no engine runs, < 1 s)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def side_by_side():
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module("side_by_side")
    finally:
        sys.path.remove(folder)


def _result(model: str, engine: str, times_ms: list[float] | None) -> dict:
    if times_ms is None:
        return {"model": model, "engine": engine, "batch_size": 32, "status": "skipped", "reason": "not here",
                "items_per_s": None, "times_ms": [None, None, None]}
    return {"model": model, "engine": engine, "batch_size": 32, "status": "ok", "reason": None,
            "items_per_s": 1.0, "times_ms": times_ms}


def test_ratios_pair_rounds_with_the_reference(side_by_side):
    rows = side_by_side.rows_for([0.5])
    measured = {(side_by_side.REFERENCE, "onnxruntime"): [100.0, 200.0, 300.0],
                ("90 % unstructured", "deepsparse"): [50.0, 50.0, 100.0]}
    results = [_result(row.label, kind, measured.get((row.label, kind))) for row in rows for kind in row.kinds]
    sparseml = {"dense": {"theoretical_speedup": 1.0}, "90%": {"theoretical_speedup": 10.0},
                "90%+int8": {"theoretical_speedup": 10.0}}
    graphs = {name: {"macs": 100} for name in ("dense", "dense+dynamic int8", "dense+int8")}
    graphs |= {"structured 0.5": {"macs": 25}, "structured 0.5+int8": {"macs": 25}}
    table = side_by_side.table_rows(rows, results, sparseml, {"graphs": graphs}, None)
    by_key = {(r["row"], r["engine"]): r for r in table}
    # paired ratios 100/50, 200/50, 300/100 = 2, 4, 3: median 3, quartiles 2.5 and 3.5
    sparse = by_key["90 % unstructured", "deepsparse"]
    assert (sparse["ratio"], sparse["q25"], sparse["q75"], sparse["pairs"]) == (3.0, 2.5, 3.5, 3)
    assert sparse["macs_vs_dense"] == pytest.approx(0.1)
    assert by_key[side_by_side.REFERENCE, "onnxruntime"]["ratio"] == 1.0
    assert by_key["structured 50% (torch backend)", "onnxruntime"]["macs_vs_dense"] == 0.25
    assert by_key["structured 50% (torch backend)", "onnxruntime"]["ratio"] is None  # skipped: no pairs
    assert len(table) == sum(len(row.kinds) for row in rows)


def test_best_deployable_is_the_fastest_within_the_accuracy_limit(side_by_side):
    def row(variant: str, ratio: float, cost: float | None) -> dict:
        return {"row": variant, "engine": "openvino", "source": "torch", "variant": variant, "ratio": ratio,
                "q25": ratio, "q75": ratio, "accuracy_cost": cost}

    rows = [row("structured 0.5+int8", 10.9, -0.02), row("structured 0.6+int8", 14.4, -0.087),
            row("structured 0.6", 20.0, 0.0)]  # an FP32 row is not the INT8 student
    best = side_by_side.targets(rows)["torch_backend_best_deployable"]
    assert (best["row"], best["ratio"], best["reached"], best["stretch_reached"]) == (
        "structured 0.5+int8", 10.9, True, True)
    rows[0]["accuracy_cost"] = -0.06  # past the limit: nothing deployable is left
    assert side_by_side.targets(rows)["torch_backend_best_deployable"]["reached"] is False

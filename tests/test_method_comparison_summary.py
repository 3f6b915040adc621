"""benchmarks/method_comparison.py's pairing with GMP (issue 24), on hand-set cells: the differences are
method − GMP within a seed, an undefined BA increase stays undefined, and a seed GMP lacks is left out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import method_comparison  # noqa: E402


def _cell(method, seed, std, accuracy, ba, sparsity=0.9, budget=8.0):
    return {"method": method, "sparsity": sparsity, "seed": seed, "budget": budget,
            "std_delta_accuracy": {"value": std}, "student_accuracy": accuracy, "ba_increase": {"value": ba}}


def test_each_method_is_paired_with_gmp_seed_by_seed():
    rows = [_cell("GMP", 0, 0.40, 0.860, 0.070), _cell("GMP", 1, 0.30, 0.850, None),
            _cell("SNIP", 0, 0.25, 0.855, 0.050), _cell("SNIP", 1, 0.35, 0.870, 0.020),
            _cell("SNIP", 2, 0.10, 0.800, 0.010),                  # GMP has no seed 2: left out
            _cell("SNIP", 0, 9.00, 0.100, 0.900, budget=1.0)]      # another budget: not this table
    (snip,) = method_comparison.paired_with_reference(rows, budget=8.0)
    assert snip["method"] == "SNIP" and snip["seeds"] == [0, 1]
    assert snip["std_delta_accuracy"] == pytest.approx([-0.15, 0.05])
    assert snip["accuracy"] == pytest.approx([-0.5, 2.0])
    assert snip["ba_increase"][0] == pytest.approx(-0.020) and snip["ba_increase"][1] is None
    assert snip["lower"] == 1


def test_a_sparsity_without_gmp_is_left_out_and_the_table_says_n_a():
    rows = [_cell("GMP", 0, 0.40, 0.860, None), _cell("GraSP", 1, 0.25, 0.855, 0.050),
            _cell("GraSP", 0, 0.50, 0.800, 0.100), _cell("GraSP", 0, 0.90, 0.700, 0.200, sparsity=0.99)]
    pairs = method_comparison.paired_with_reference(rows, 8.0)
    assert [(p["sparsity"], p["seeds"], p["ba_increase"]) for p in pairs] == [(0.9, [0], [None])]
    line = method_comparison._per_seed([0.1, None], 3)
    assert line == "+0.100 / n/a"


def test_the_grid_runs_only_the_sparsities_asked_for_and_keeps_the_recovery_curve_with_its_sparsity():
    only_099 = method_comparison.grid(seeds=5, budget=8.0, only=["GMP"], sparsities=(0.99,))
    assert [(c["sparsity"], c["seed"]) for c in only_099] == [(0.99, seed) for seed in range(5)]
    with_09 = method_comparison.grid(seeds=1, budget=8.0, only=["GMP"], sparsities=(0.9,))
    assert [c["budget"] for c in with_09] == [8.0, 1.0, 2.0, 4.0]

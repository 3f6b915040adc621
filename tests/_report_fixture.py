"""A demo-like report dict that follows the report.json schema (compress_gate.report.schema).

Values are plausible, not computed: the report renderer is tested on its layout and
on how it treats undefined values, not on the numbers (the gate's tests pin those).
Every kind of undefined value the schema allows appears at least once.
"""

from __future__ import annotations

import copy
from html.parser import HTMLParser

import numpy as np

ATTRIBUTES = ("smiling", "eyeglasses", "wavy_hair", "blond_hair", "bald")
GROUPS = ("male", "young")


def _per_attribute(rng: np.random.Generator, shift: float) -> dict:
    out = {}
    for name in ATTRIBUTES:
        out[name] = {
            "fpr": round(float(rng.uniform(0.02, 0.2)) + shift, 4),
            "fnr": round(float(rng.uniform(0.05, 0.3)) + shift, 4),
            "tcb": round(float(rng.uniform(0.7, 1.1)), 4),
            "uncertainty": round(float(rng.uniform(0.05, 0.3)), 4),
            "ece": round(float(rng.uniform(0.01, 0.08)), 4),
            "r2": round(float(rng.uniform(0.0, 0.4)), 4),
        }
    return out


def _ba(rng: np.random.Generator, offset: float) -> dict:
    out = {}
    for attr in ATTRIBUTES:
        row = {}
        for group in GROUPS:
            row[group] = round(float(rng.normal(0.02, 0.03)) + offset, 4)
        out[attr] = row
    # the kinds of undefined BA the DESIGN names
    out["bald"] = {"male": {"undefined": "N_test(A=1, I=0) = 3 < 10"},
                   "young": {"undefined": "train rates differ by less than 10% (0.04 vs 0.042)"}}
    return out


def _increase(student: dict, teacher: dict) -> dict:
    out: dict = {}
    for attr, row in student.items():
        out[attr] = {}
        for group, value in row.items():
            t = teacher[attr][group]
            if isinstance(value, dict) or isinstance(t, dict):
                out[attr][group] = value if isinstance(value, dict) else t
            else:
                out[attr][group] = round(value - t, 4)
    return out


def _bench_row(model: str, engine: str, batch: int, p50: float | None, reason: str | None = None) -> dict:
    ok = p50 is not None
    return {"model": model, "engine": engine, "batch_size": batch, "status": "ok" if ok else "skipped",
            "reason": reason, "items_per_s": batch / p50 * 1e3 if ok else None, "details": None,
            "latency_ms": {"p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.3, "mean_ms": p50 * 1.02}
            if ok else None, "times_ms": [p50] * 3 if ok else None}


def _benchmarks() -> dict:
    """The shape of ``compress_gate.engines.benchmark_models``' output."""
    no_gpu = "no CUDA GPU on this machine"
    return {
        "schema_version": 1, "created": "2025-01-01T11:58:00+00:00",
        "machine": {"cpu_model": "Intel Xeon", "logical_cpus": 2, "threads_used": 2,
                    "flags": {"avx2": True, "avx512": True, "vnni": False, "amx": False}},
        "settings": {"batch_sizes": [1, 32], "warmup": 3, "iterations": 20, "reference": "teacher"},
        "models": {"teacher": "teacher.onnx", "student": "student.onnx"},
        "engines": {"onnxruntime": None, "deepsparse": None, "onnxruntime-cuda": no_gpu},
        "results": [_bench_row("teacher", "onnxruntime", 1, 4.1), _bench_row("student", "onnxruntime", 1, 2.2),
                    _bench_row("teacher", "deepsparse", 1, 3.0), _bench_row("student", "deepsparse", 1, 1.1),
                    _bench_row("student", "onnxruntime-cuda", 1, None, no_gpu)],
        "speedups": [{"model": "student", "reference": "teacher", "engine": "onnxruntime", "batch_size": 1,
                      "ratio": 1.86, "q25": 1.8, "q75": 1.93, "ratio_of_medians": 1.86, "pairs": 20},
                     {"model": "student", "reference": "teacher", "engine": "deepsparse", "batch_size": 1,
                      "ratio": 2.72, "q25": 2.6, "q75": 2.8, "ratio_of_medians": 2.7, "pairs": 20}],
    }


def demo_report(*, verdict: str = "fail") -> dict:
    """A full report as GATE + PIPELINE write it for the demo (deterministic)."""
    rng = np.random.default_rng(0)
    teacher_pa = _per_attribute(rng, 0.0)
    student_pa = _per_attribute(rng, 0.02)
    student_pa["bald"]["fpr"] = 0.0012
    teacher_pa["bald"]["fpr"] = 0.0  # teacher FPR 0 -> normalized change undefined
    delta_fpr = {a: round(100 * (student_pa[a]["fpr"] - teacher_pa[a]["fpr"]) / teacher_pa[a]["fpr"], 2)
                 if teacher_pa[a]["fpr"] else None for a in ATTRIBUTES}
    delta_fnr = {a: round(100 * (student_pa[a]["fnr"] - teacher_pa[a]["fnr"]) / teacher_pa[a]["fnr"], 2)
                 for a in ATTRIBUTES}
    ba_teacher = _ba(rng, 0.0)
    ba_student = _ba(rng, 0.015)
    ba_student["eyeglasses"]["young"] = {"undefined": "the student predicts no positives"}
    ba_after = _ba(rng, 0.004)
    subgroups = []
    names = ["all", "male", "not male", "young", "not young", "male & young", "male & not young",
             "not male & young", "not male & not young"]
    for i, name in enumerate(names):
        size = int(1200 if name == "all" else rng.integers(4, 600))
        t = {k: round(float(rng.uniform(0.05, 0.2)), 4) for k in ("error", "fpr", "fnr")}
        s = {k: round(v * float(rng.uniform(0.9, 1.4)), 4) for k, v in t.items()}
        nd = {k: round(100 * (s[k] - t[k]) / t[k], 2) for k in t}
        if i == len(names) - 1:  # a tiny intersection without positives
            t["fnr"] = s["fnr"] = None
            nd["fnr"] = None
            size = 4
        subgroups.append({"name": name, "size": size, "teacher": t, "student": s,
                          "normalized_difference": nd})
    edges = [round(x, 2) for x in np.linspace(0, 1, 11)]
    report = {
        "schema_version": 7,
        "verdict": verdict,
        "outcome": verdict,
        "created": "2025-01-01T12:00:00+00:00",
        "inputs": {"data": "runs/demo/data.npz", "teacher": ["runs/demo/teacher.npz"],
                   "students": ["runs/demo/student_0.npz", "runs/demo/student_1.npz"],
                   "task": "multilabel", "n_calib": 400, "n_test": 1200, "n_students": 2,
                   "attribute_names": list(ATTRIBUTES), "group_names": list(GROUPS)},
        "config": {"confidence": 0.95, "n_resamples": 200, "seed": 0,
                   "limits": [{"metric": "ba", "change": "absolute", "max": 0.02, "bound": "upper"},
                              {"metric": "cev", "max": 50.0, "bound": "upper"}]},
        "judged": "thresholds",
        "scope": "The verdict holds for inputs the overrides file does not cover.",
        "limits": [
            {"name": "ba:smiling/male", "metric": "ba", "observed": 0.031, "ci": [0.012, 0.047],
             "bound": "upper", "gated": 0.047, "limit": 0.02, "direction": "max", "passed": False,
             "outcome": "fail", "reason": "upper bound 0.047 > 0.02"},
            {"name": "ba:eyeglasses/young", "metric": "ba", "observed": None, "ci": None,
             "bound": "upper", "gated": None, "limit": 0.02, "direction": "max", "passed": False,
             "outcome": "fail", "reason": "student BA undefined (no positive predictions) where the teacher's is defined"},
            {"name": "cev", "metric": "cev", "observed": 21.5, "ci": [9.1, 38.0], "bound": "upper", "gated": 38.0,
             "limit": 50.0, "direction": "max", "passed": True, "outcome": "pass", "reason": "upper bound 38.0 <= 50.0"},
            {"name": "accuracy <script>", "metric": "accuracy", "observed": 0.91, "ci": [0.9, 0.92],
             "bound": "lower", "gated": 0.9, "limit": 0.85, "direction": "min", "passed": True,
             "outcome": "pass", "reason": "lower bound 0.9 >= 0.85"},
        ],
        "metrics": {
            "teacher": {"accuracy": 0.912, "per_attribute": teacher_pa},
            "student": {"accuracy": 0.897, "per_attribute": student_pa},
            "delta": {"fpr": delta_fpr, "fnr": delta_fnr},
            "cev": {"value": 21.5, "ci": [9.1, 38.0], "excluded": ["bald"]},
            "sde": {"value": 12.3, "ci": [6.0, 19.9], "excluded": ["bald"]},
            "ba": {"teacher": ba_teacher, "student": ba_student,
                   "increase": _increase(ba_student, ba_teacher)},
            "subgroups": subgroups,
            "uncertainty_histogram": {"edges": edges,
                                      "teacher": [int(x) for x in rng.integers(5, 400, 10)],
                                      "student": [int(x) for x in rng.integers(5, 400, 10)]},
            "cie": {"count": 57, "share": 0.0475, "share_uncertain_teacher": 0.61, "share_uncertain_student": 0.66,
                    "share_uncertain_all_teacher": 0.18},
        },
        "mitigation": {
            "thresholds": {a: round(float(rng.uniform(0.3, 0.7)), 3) for a in ATTRIBUTES},
            "overrides": {"count": 24, "share": 0.02, "budget": 0.02, "attributes": ["smiling", "wavy_hair"]},
            "after": {"accuracy": 0.902, "cev": {"value": 15.2, "ci": [7.0, 27.5], "excluded": ["bald"]},
                      "sde": {"value": 9.8, "ci": [4.1, 15.0], "excluded": ["bald"]},
                      "ba": {"student": ba_after, "increase": _increase(ba_after, ba_teacher)},
                      "delta": {"fpr": {a: (None if v is None else round(v * 0.6, 2))
                                        for a, v in delta_fpr.items()},
                                "fnr": {a: round(v * 0.7, 2) for a, v in delta_fnr.items()}}},
        },
        "engines": {"deployment": "onnxruntime",
                    "agreement": [{"engine": "deepsparse", "label_agreement": 0.9992,
                                   "max_score_difference": 0.0031}]},
        "benchmarks": _benchmarks(),
        "run": {"recipe": "recipes/demo.yaml", "recipe_hash": "ab" * 32, "seed": 0,
                "compress_gate_version": "0.1.0", "deployment_engine": "onnxruntime",
                "compression": {"overall_sparsity": 0.8, "quantized": True},
                "stage_seconds": {"train_teacher": 31.2, "compress": 95.0, "export": 3.3},
                "similarity": {"n_rows": 512, "seed": 0, "split": "calib", "keep": 0.99, "pooling": "spatial mean",
                               "student": "model", "layers": {"layer1": {"cka": 0.98765, "svcca": None},
                                                              "layer2": {"cka": 0.5, "svcca": 0.25}},
                               "mean": {"cka": 0.743825, "svcca": 0.25}, "seconds": 0.4}},
        "estimates": {"intervals": ["ba", "cev", "sde"], "point_only": ["accuracy", "fpr", "fnr"],
                      "not_computed": {"group_ap": "no limit gates an AP metric"}},
    }
    return report


def passing_minimal_report() -> dict:
    """The smallest report a `gate` without benchmarks, mitigation or limits writes."""
    report = copy.deepcopy(demo_report(verdict="pass"))
    report["limits"] = []
    report["no_limits"] = True
    report["mitigation"] = None
    report["benchmarks"] = None
    report.pop("engines")
    report.pop("run")
    return report


class _CellText(HTMLParser):
    """The text of every <td>, leaving out what a <details> block hides."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._in_td = self._in_details = 0

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._in_td += 1
            self.cells.append("")
        elif tag == "details":
            self._in_details += 1

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_td -= 1
        elif tag == "details":
            self._in_details -= 1

    def handle_data(self, data):
        if self._in_td and not self._in_details:
            self.cells[-1] += data


def table_cell_texts(page: str) -> list[str]:
    """The visible text of each table cell of ``page`` (a closed <details> block's content left out)."""
    parser = _CellText()
    parser.feed(page)
    return parser.cells

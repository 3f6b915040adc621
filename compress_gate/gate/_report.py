"""Building report.json: the gate's numbers gathered into the typed :class:`~compress_gate.report.schema.Report`.

Values follow the one JSON convention (:func:`compress_gate._json.json_safe`): nan -> null,
±inf -> "inf"/"-inf", a reasoned undefined value -> ``{"undefined": reason}``.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import numpy as np

from compress_gate import metrics
from compress_gate._json import json_safe
from compress_gate.config.gate import GATED_METRICS, GateConfig
from compress_gate.gate._bootstrap import Resamples
from compress_gate.gate._limits import compared_change, finite_interval
from compress_gate.gate._measures import Layout, PopulationMetrics
from compress_gate.report.schema import PER_ATTRIBUTE, SCHEMA_VERSION, LimitResult, Report

__all__ = ["build_report"]

_HISTOGRAM_EDGES = np.round(np.linspace(0.0, 1.0, 11), 10)


def _model_summary(measurer: PopulationMetrics, key: str) -> dict:
    """Accuracy and the per-attribute numbers of population ``key`` (means over its members)."""
    names = measurer.layout.attribute_names
    columns = {m: measurer.values(key, m) for m in PER_ATTRIBUTE}
    r2 = np.mean([metrics.label_interrelation_from_counts(measurer.tables(key, i)["interrelation"])
                  for i in range(measurer.sizes[key])], axis=0)
    per_attribute = {name: {**{m: columns[m][i] for m in PER_ATTRIBUTE}, "r2": r2[i]}
                     for i, name in enumerate(names)}
    return {"accuracy": measurer.values(key, "accuracy")[0], "per_attribute": per_attribute}


def _error_balance(measurer: PopulationMetrics, key: str, boot: Resamples | None, confidence: float) -> dict:
    """δFPR/δFNR per attribute, CEV and SDE with their intervals and the attributes left out."""
    cev, sde, d_fpr, d_fnr = measurer.error_balance(key)
    names = measurer.layout.attribute_names
    excluded = [n for n, a, b in zip(names, d_fpr, d_fnr) if np.isnan(a) or np.isnan(b)]
    out = {"delta": {"fpr": dict(zip(names, d_fpr)), "fnr": dict(zip(names, d_fnr))}}
    for name, value in (("cev", cev), ("sde", sde)):
        own = measurer.key(key)
        samples = None if boot is None or own not in boot.balance else boot.balance[own][name]
        entry = {"value": float(value), "ci": finite_interval(samples, confidence), "excluded": excluded}
        if math.isnan(float(value)):
            entry["undefined"] = "no attribute has a nonzero teacher FPR and FNR"
        out[name] = entry
    return out


def _ba_entry(value: float, reasons: list[object]) -> float | dict:
    """A BA value, or ``{"undefined": reason}`` with the first member's reason."""
    if not math.isnan(value):
        return value
    why = next((str(r) for r in reasons if r is not None), "undefined")
    return {"undefined": why}


def _ba_tables(measurer: PopulationMetrics, key: str, family: str = "confusion") -> tuple[dict, dict, dict]:
    """(teacher, student, increase) as attribute -> identity -> number | {"undefined": reason}.

    A population's BA is the mean over its members: undefined when any member's is. The
    increase is :func:`~compress_gate.gate._limits.compared_change` (absolute), as a BA limit gates it.
    ``family="uncovered"`` measures on the test rows without an override.
    """
    teacher = measurer.bias_amplification("teacher", 0, family=family)
    members = [measurer.bias_amplification(key, i, family=family) for i in range(measurer.sizes[measurer.key(key)])]
    student = np.mean([m.values for m in members], axis=0)
    increase = compared_change("absolute", student, teacher.values)
    t_out: dict = {}
    s_out: dict = {}
    inc_out: dict = {}
    for i, attr in enumerate(measurer.layout.attribute_names):
        t_out[attr], s_out[attr], inc_out[attr] = {}, {}, {}
        for j, group in enumerate(measurer.layout.group_names):
            t_val = _ba_entry(float(teacher.values[i, j]), [teacher.reasons[i, j]])
            s_val = _ba_entry(float(student[i, j]), [m.reasons[i, j] for m in members])
            t_out[attr][group], s_out[attr][group] = t_val, s_val
            if isinstance(t_val, dict):
                inc_out[attr][group] = {"undefined": f"teacher: {t_val['undefined']}"}
            elif isinstance(s_val, dict):
                inc_out[attr][group] = {"undefined": f"student: {s_val['undefined']}"}
            else:
                inc_out[attr][group] = float(increase[i, j])
    return t_out, s_out, inc_out


def _subgroups(measurer: PopulationMetrics, key: str) -> list[dict]:
    """Pooled error/FPR/FNR per subgroup row: sizes, teacher, student (population mean), and the
    normalized difference in percent (Hooker et al.)."""
    teacher = measurer.subgroup_table("teacher", 0)
    tables = [measurer.subgroup_table(key, i) for i in range(measurer.sizes[measurer.key(key)])]
    rates = ("error", "fpr", "fnr")
    student = {r: np.mean([getattr(tb, f"pooled_{r}") for tb in tables], axis=0) for r in rates}
    averaged = metrics.SubgroupTable(names=teacher.names, sizes=teacher.sizes,
                                     **{f"pooled_{r}": student[r] for r in rates})
    difference = metrics.subgroup_normalized_difference(teacher, averaged)
    return [{"name": name, "size": int(teacher.sizes[row]),
             "teacher": {r: getattr(teacher, f"pooled_{r}")[row] for r in rates},
             "student": {r: student[r][row] for r in rates},
             "normalized_difference": {r: difference[f"pooled_{r}"][row] for r in rates}}
            for row, name in enumerate(teacher.names)]


def _histogram(measurer: PopulationMetrics, key: str) -> list[float]:
    counts = [measurer.tables(key, i)["histogram"] for i in range(measurer.sizes[key])]
    return np.mean(counts, axis=0).tolist()


def _cie(measurer: PopulationMetrics) -> dict:
    """Modal CIEs (Hooker et al.) of the raw students against the teacher(s), and how uncertain
    the models are on them: the share of the CIEs' scores inside (0.1, 0.9), averaged over
    the population, next to the teacher's share on every test sample."""
    tables = measurer.stats.tables
    count, n_test = float(tables[("cie", "count")]), float(tables[("n_test",)])

    def share(inside: np.ndarray) -> float:
        return float("nan") if count == 0 else float(np.mean([(row / count).mean() for row in inside]))
    everyone = [metrics.uncertainty_from_counts(measurer.tables("teacher", i)["uncertainty"]).mean()
                for i in range(measurer.sizes["teacher"])]
    return {"count": int(count), "share": count / n_test, "share_uncertain_teacher": share(tables[("cie", "teacher")]),
            "share_uncertain_student": share(tables[("cie", "student")]),
            "share_uncertain_all_teacher": float(np.mean(everyone))}


def _metrics_section(measurer: PopulationMetrics, key: str, boot: Resamples | None, config: GateConfig) -> dict:
    balance = _error_balance(measurer, key, boot, config.confidence)
    ba_t, ba_s, ba_inc = _ba_tables(measurer, key)
    return {
        "teacher": _model_summary(measurer, "teacher"),
        "student": _model_summary(measurer, key),
        "delta": balance["delta"], "cev": balance["cev"], "sde": balance["sde"],
        "ba": {"teacher": ba_t, "student": ba_s, "increase": ba_inc},
        "subgroups": _subgroups(measurer, key),
        "uncertainty_histogram": {"edges": _HISTOGRAM_EDGES.tolist(),
                                  "teacher": _histogram(measurer, "teacher"),
                                  "student": _histogram(measurer, key)},
        "cie": _cie(measurer),
    }


def _after_section(measurer: PopulationMetrics, key: str, boot: Resamples | None, confidence: float) -> dict:
    balance = _error_balance(measurer, key, boot, confidence)
    _, ba_s, ba_inc = _ba_tables(measurer, key)
    return {"accuracy": measurer.values(key, "accuracy")[0], "cev": balance["cev"],
            "sde": balance["sde"], "ba": {"student": ba_s, "increase": ba_inc}, "delta": balance["delta"]}


def _uncovered(measurer: PopulationMetrics) -> dict:
    """Teacher and shipped student (thresholds; overrides do not apply there) on the test rows
    without an override: accuracy and BA. What a catalogue verdict says about other inputs."""
    def accuracy(key: str) -> float:
        return float(np.mean([metrics.accuracy_from_counts(measurer.tables(key, i)["uncovered"],
                                                           task=measurer.layout.task)
                              for i in range(measurer.sizes[key])]))
    ba_t, ba_s, ba_inc = _ba_tables(measurer, "mitigated", "uncovered")
    uncovered = measurer.tables("teacher", 0)["uncovered"]
    return {"n_rows": int(uncovered.size[0]), "teacher_accuracy": accuracy("teacher"),
            "accuracy": accuracy("mitigated"), "ba": {"teacher": ba_t, "student": ba_s, "increase": ba_inc}}


def _scope(judged: str, calibrated: bool, n_test: int, n_overridden: int, uncovered: dict | None) -> str:
    """One sentence every output prints: which inputs the verdict holds for."""
    if judged == "raw":
        return ("The verdict is about the raw student (judge: raw): before the thresholds and overrides "
                "that ship.")
    if judged == "thresholds":
        rule = ("with its thresholds (fit on calib)" if calibrated else
                "with its own decision rule (score > 0.5, or argmax; no calibrated thresholds)")
        return (f"The verdict holds for inputs the overrides file does not cover: the student {rule}, "
                "judged on the test split; no human label of a judged row enters the judged predictions.")
    text = (f"The verdict holds for the ids in overrides.json only (judge: catalogue): {n_overridden:,} of "
            f"the {n_test:,} judged test rows carry an override label.")
    if uncovered is not None and uncovered["n_rows"] == 0:
        text += " Every judged test row carries one, so no row shows how the student does on other inputs."
    elif uncovered is not None:
        increases = [v for row in uncovered["ba"]["increase"].values() for v in row.values()
                     if isinstance(v, float) and np.isfinite(v)]
        worst = f"{max(increases):+.4g}" if increases else "undefined"
        text += (f" On the {uncovered['n_rows']:,} rows without an override: accuracy "
                 f"{_defined(uncovered['accuracy'])} (teacher {_defined(uncovered['teacher_accuracy'])}), "
                 f"worst BA increase {worst}.")
    return text


def _defined(value: float) -> str:
    """``value`` to 4 significant digits, or ``undefined`` (never ``nan`` in a sentence)."""
    return f"{value:.4g}" if np.isfinite(value) else "undefined"


def _estimates(boot: Resamples | None, not_computed: dict[str, str]) -> dict:
    """report.json's ``estimates``: the gated metrics the bootstrap resampled (every other one is a
    point value) and the ones not computed, with why."""
    resampled = set() if boot is None else ({metric for _, metric in boot.values} | set(boot.pairs)
                                            | {metric for balance in boot.balance.values() for metric in balance})
    return {"intervals": sorted(resampled), "point_only": sorted(set(GATED_METRICS) - resampled - set(not_computed)),
            "not_computed": dict(sorted(not_computed.items()))}


def build_report(*, layout: Layout, config: GateConfig, measurer: PopulationMetrics, entries: list[LimitResult],
                 outcome: str, judged: str, boot: Resamples | None, applied: bool,
                 thresholds: np.ndarray | None, n_overridden: int, override_attrs: list[str],
                 n_calib: int, n_test: int, engine_checks: list[dict] | None, deployment_engine: str,
                 benchmarks: dict | None, inputs: dict | None, fairgrape: dict | None = None,
                 not_computed: dict[str, str] | None = None) -> Report:
    """The typed report (schema: :mod:`compress_gate.report.schema`), built once; the run adds its section."""
    uncovered = _uncovered(measurer) if n_overridden else None
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "verdict": "pass" if outcome == "pass" else "fail",
        "outcome": outcome,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": {**(inputs or {}), "task": layout.task, "n_calib": n_calib, "n_test": n_test,
                   "n_students": measurer.sizes["raw"],
                   "attribute_names": list(layout.attribute_names), "group_names": list(layout.group_names)},
        "config": config.model_dump(mode="json"),
        "judged": judged,
        "scope": _scope(judged, config.mitigation.calibrate_thresholds, n_test, n_overridden, uncovered),
        "limits": [entry.model_dump(mode="json") for entry in entries],
    }
    if not entries:
        report["no_limits"] = True
        report["note"] = ("no limits configured: the gate reports its metrics and passes. Add limits "
                          "(see docs/gate.md) to gate release.")
    report["metrics"] = _metrics_section(measurer, "raw", boot, config)
    report["mitigation"] = None if not applied else {
        "thresholds": None if thresholds is None else dict(zip(layout.attribute_names, thresholds)),
        "overrides": {"count": n_overridden, "share": n_overridden / n_test,
                      "budget": config.mitigation.override_budget, "attributes": override_attrs},
        "calibrated": (_after_section(measurer, "thresholds", boot, config.confidence)
                       if config.mitigation.calibrate_thresholds else None),
        "after": _after_section(measurer, "mitigated", boot, config.confidence),
        "uncovered": uncovered,
    }
    report["engines"] = {"deployment": deployment_engine, "agreement": list(engine_checks or [])}
    report["benchmarks"] = benchmarks
    report["fairgrape"] = fairgrape
    report["estimates"] = _estimates(boot, not_computed or {})
    return Report.model_validate(json_safe(report))

"""``evaluate``: teacher vs students on every number, mitigation, intervals, limits, verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from compress_gate import metrics
from compress_gate.config.gate import GATED_METRICS, GateConfig
from compress_gate.data.contract import EvalData
from compress_gate.errors import InputError
from compress_gate.gate._bootstrap import bootstrap
from compress_gate.gate._fairgrape_measures import fairgrape_section, pair_measured, resampled, undefined_reason
from compress_gate.gate._limits import Measured, judge_limit
from compress_gate.gate._measures import Measurer, Member, TestSet
from compress_gate.gate._report import build_report
from compress_gate.gate.schema import Report, RunSection
from compress_gate.mitigation import (Overrides, apply_overrides, apply_thresholds, calibrate_thresholds,
                                      overridden_rows, select_overrides)

__all__ = ["GateResult", "evaluate", "run_outcome", "JUDGED_POPULATION"]

#: ``gate.judge`` -> the population the limits judge: the raw student, the student with its
#: calibrated thresholds (the default: no label of a judged row enters), or with its thresholds
#: and overrides (``catalogue``: a closed set of known inputs).
JUDGED_POPULATION = {"raw": "raw", "thresholds": "thresholds", "catalogue": "mitigated"}


@dataclass(frozen=True)
class GateResult:
    """What the gate decided and what ships with the student.

    ``report`` is the typed report.json (:class:`~compress_gate.gate.schema.Report`); ``thresholds`` are the
    calibrated thresholds of the first (shipped) student, None without calibration or
    for multi-class; ``overrides`` is the content of ``overrides.json``'s ``overrides``.
    """

    report: Report
    passed: bool
    thresholds: np.ndarray | None
    overrides: Overrides

    def with_run(self, run: RunSection) -> GateResult:
        """The same result whose report carries the run's section (a new report; this one is unchanged)."""
        return replace(self, report=self.report.with_run(run))


def _check_scores(scores: Any, n: int, k: int, what: str) -> np.ndarray:
    arr = np.asarray(scores)
    if arr.shape != (n, k):
        raise InputError(f"{what}: scores have shape {arr.shape}; the gate needs ({n}, {k}): one row per "
                         "calib and test row of the eval data (in data order, see align_scores) and "
                         "one column per attribute.")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
        raise InputError(f"{what}: scores must be finite probabilities in [0, 1]. Load them with "
                         "compress_gate.data.load_predictions, which names the bad rows.")
    return arr


def _split_rows(data: EvalData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scored = data.mask("calib", "test")
    split = data.split[scored]
    return scored, split == "calib", split == "test"


def _test_set(data: EvalData, scored: np.ndarray, test: np.ndarray) -> TestSet:
    train = data.mask("train")
    if not train.any():
        raise InputError("the eval data has no row with split = 'train'. BA and TCB take their direction "
                         "from training labels: add the training rows' labels and groups with "
                         "split = 'train' (they need no scores).")
    return TestSet(y_true=data.labels[scored][test], groups=data.groups[scored][test],
                   group_names=data.group_names, attribute_names=data.attribute_names, task=data.task,
                   train_labels=data.labels[train], train_groups=data.groups[train])


def _mitigate(config: GateConfig, measurer: Measurer, ids_test: np.ndarray, calib_labels: np.ndarray,
              calib_scores: list[np.ndarray]
              ) -> tuple[list[Member], list[Member], list[np.ndarray] | None, Overrides, list[str]]:
    """Students with thresholds, with thresholds and overrides, the thresholds, the overrides and
    the overridden attributes.

    Thresholds are calibrated per student on its calib scores; overrides are chosen once
    from the teacher (attributes with a positive teacher BA) and applied to every student.
    """
    mitigation, test_set = config.mitigation, measurer.test
    students = measurer.populations["raw"]
    thresholds = None
    preds = [m.y_pred for m in students]
    if mitigation.calibrate_thresholds:
        if test_set.task == "multiclass":
            raise InputError("gate.mitigation.calibrate_thresholds: true applies to multi-label data only; "
                             "this data is multi-class (the prediction is the argmax class). Set it to "
                             "false.")
        thresholds = [calibrate_thresholds(calib_labels, s) for s in calib_scores]
        preds = [apply_thresholds(m.y_score, t) for m, t in zip(students, thresholds)]
    calibrated = [Member(y_pred=p, y_score=m.y_score) for p, m in zip(preds, students)]
    overrides: Overrides = {}
    attributes: list[str] = []
    if mitigation.override_budget > 0:
        teacher = measurer.populations["teacher"][0]
        ba = measurer.bias_amplification(teacher, None).values
        positive = np.nan_to_num(ba, nan=-np.inf).max(axis=1) > 0
        attributes = [name for name, keep in zip(test_set.attribute_names, positive) if keep]
        overrides = select_overrides(ids_test, teacher.y_score, test_set.attribute_names,
                                     attributes=attributes, budget=mitigation.override_budget,
                                     task=test_set.task, y_true=test_set.y_true)
        preds = [apply_overrides(ids_test, p, overrides, test_set.attribute_names) for p in preds]
    members = [Member(y_pred=p, y_score=m.y_score) for p, m in zip(preds, students)]
    return calibrated, members, thresholds, overrides, attributes


def _engine_measures(engine_checks: Sequence[dict] | None) -> dict[str, Measured]:
    if not engine_checks:
        why = ("no engine comparison was run (`compress-gate gate` on prediction files judges one "
               "engine; `compress-gate run` compares the engines)")
        return {m: Measured(units=(), student=np.empty(0), undefined_reason=why)
                for m, spec in GATED_METRICS.items() if spec.source == "engines"}
    units = tuple(str(c.get("engine")) for c in engine_checks)

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if c.get(key) is None else float(c[key]) for c in engine_checks])
    why = "the engine comparison has no value for this engine"
    return {"engine_agreement": Measured(units, column("label_agreement"), undefined_reason=why),
            "engine_score_difference": Measured(units, column("max_score_difference"), undefined_reason=why)}


def evaluate(data: EvalData, teacher_scores: np.ndarray, student_scores: Sequence[np.ndarray],
             config: GateConfig, *, engine_checks: list[dict] | None = None,
             benchmarks: dict | None = None, inputs: dict | None = None,
             deployment_engine: str = "onnxruntime") -> GateResult:
    """Judge students against their teacher: metrics, mitigation, intervals, limits, verdict.

    Parameters
    ----------
    data : the eval data (train rows give BA/TCB directions, calib rows calibrate, test rows judge)
    teacher_scores, student_scores : (n_calib + n_test, K) scores aligned to
        ``data.mask("calib", "test")`` rows (see :func:`compress_gate.data.align_scores`);
        several students are a population (rates averaged over it first); the first ships.
    config : the gate section (limits, interval settings, mitigation, judge)
    engine_checks : ``[{"engine", "label_agreement", "max_score_difference"}]`` of the other
        engines against the deployment engine, when they were compared
    benchmarks : the engines' benchmark results, copied into the report
    inputs : file names for the report's ``inputs`` (``data``, ``teacher``, ``students``)

    Every number of DESIGN.md is computed for the teacher and the student population on
    the test split; the gated numbers get seeded bootstrap percentile intervals over
    test samples (one weight matrix shared by teacher and students, so changes are
    paired). Limits judge the population :data:`JUDGED_POPULATION` names for ``config.judge``:
    by default the student with its calibrated thresholds, so no override (no human label
    of a judged row) enters the judged predictions and the verdict does not depend on the
    override budget. Each limit passes, fails or has not enough evidence; the run passes
    only if every limit passes (:func:`run_outcome`); with no limits it passes and says so.
    """
    scored, calib, test = _split_rows(data)
    k = data.n_attributes
    if not student_scores:
        raise InputError("the gate needs at least one student's scores (--student S.npz).")
    teacher_arr = _check_scores(teacher_scores, int(scored.sum()), k, "teacher")
    students = [_check_scores(s, int(scored.sum()), k, f"student {i + 1}") for i, s in enumerate(student_scores)]
    test_set = _test_set(data, scored, test)
    ids_test = data.ids[scored][test]

    def member(scores: np.ndarray) -> Member:
        return Member(metrics.predict_labels(scores[test], task=data.task), scores[test])
    teacher = member(teacher_arr)
    measurer = Measurer(test_set, {"teacher": [teacher], "raw": [member(s) for s in students]})
    calibrated, mitigated, thresholds, overrides, override_attrs = _mitigate(
        config, measurer, ids_test, data.labels[scored][calib], [s[calib] for s in students])
    applied = config.mitigation.calibrate_thresholds or config.mitigation.override_budget > 0
    measurer.populations["thresholds"] = (calibrated if config.mitigation.calibrate_thresholds
                                          else measurer.populations["raw"])
    measurer.populations["mitigated"] = mitigated if applied else measurer.populations["raw"]
    judged = JUDGED_POPULATION[config.judge]
    if measurer.populations[judged] is measurer.populations["raw"]:
        judged = "raw"                   # the same predictions: measured and resampled once

    member_metrics = sorted({lim.metric for lim in config.limits if GATED_METRICS[lim.metric].source == "member"})
    balance_keys = list(dict.fromkeys(["raw", judged] + (["mitigated"] if applied else [])))
    resampled_members, resampled_pairs = resampled({lim.metric for lim in config.limits})
    boot = bootstrap(measurer, config, judged=judged, metrics_wanted=resampled_members, balance_keys=balance_keys,
                     pair_metrics=resampled_pairs)

    measured = _engine_measures(engine_checks)
    share = float(overridden_rows(ids_test, overrides).mean())  # the override-share limit, whatever is judged
    measured["override_share"] = Measured(("model",), np.array([share]))
    for name in (m for m, spec in GATED_METRICS.items() if spec.source == "balance"):
        point = measurer.error_balance(judged, None)[0 if name == "cev" else 1]
        measured[name] = Measured(("model",), point.reshape(1),
                                  student_boot=None if boot is None else boot.balance[judged][name][:, None],
                                  undefined_reason="no attribute has a nonzero teacher FPR and FNR")
    for metric in member_metrics:
        ba_reasons = _ba_not_measured(measurer, teacher) if metric == "ba" else {}
        measured[metric] = Measured(
            measurer.units(metric), measurer.values(judged, metric, None),
            teacher=measurer.values("teacher", metric, None),
            student_boot=None if boot is None else boot.values[(judged, metric)],
            teacher_boot=None if boot is None else boot.values[("teacher", metric)],
            not_measured=ba_reasons,
            undefined_reason=_ba_undefined_reason(data) if metric == "ba" else undefined_reason(metric, test_set))
    for metric in sorted({lim.metric for lim in config.limits if GATED_METRICS[lim.metric].source == "teacher_pair"}):
        measured[metric] = pair_measured(measurer, judged, metric, boot, config.seed)
    n_test = int(test.sum())
    entries = [judge_limit(limit, measured[limit.metric], confidence=config.confidence, n_samples=n_test)
               for limit in config.limits]
    outcome = run_outcome([entry["outcome"] for entry in entries])
    overridden = overridden_rows(ids_test, overrides)
    report = build_report(
        data=data, config=config, measurer=measurer, entries=entries, outcome=outcome, judged=config.judge,
        boot=boot, applied=applied, thresholds=None if thresholds is None else thresholds[0],
        overridden=overridden, override_attrs=override_attrs, n_calib=int(calib.sum()), n_test=n_test,
        engine_checks=engine_checks, deployment_engine=deployment_engine, benchmarks=benchmarks,
        inputs=inputs, fairgrape=fairgrape_section(measurer, judged, boot, confidence=config.confidence,
                                                   seed=config.seed, population=judged))
    return GateResult(report=report, passed=outcome == "pass",
                      thresholds=None if thresholds is None else thresholds[0], overrides=overrides)


def run_outcome(outcomes: Sequence[str]) -> str:
    """The run's outcome from its limits': ``fail`` if any limit failed, else ``not_enough_evidence``
    if any is undecided, else ``pass`` (also with no limits). The run releases only on ``pass``."""
    if "fail" in outcomes:
        return "fail"
    return "not_enough_evidence" if "not_enough_evidence" in outcomes else "pass"


def _ba_not_measured(measurer: Measurer, teacher: Member) -> dict[str, str]:
    """unit -> reason for the (attribute, identity) pairs whose BA is not computed."""
    reasons = measurer.bias_amplification(teacher, None).reasons
    units = measurer.units("ba")
    return {unit: str(reason) for unit, reason in zip(units, np.asarray(reasons).reshape(-1)) if reason}


def _ba_undefined_reason(data: EvalData) -> str:
    """Why BA is undefined: no identity group at all, else a model without positive predictions."""
    if not data.group_names:
        return ("the eval data has no identity group column (`group__<name>`), so BA has no "
                "(attribute, identity) pair to measure; add the group columns to data.npz")
    return "a model has no positive prediction"

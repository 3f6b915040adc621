"""``evaluate``: teacher vs students on every number, mitigation, intervals, limits, verdict."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from compress_gate import metrics
from compress_gate.config.gate import GATED_METRICS, GateConfig
from compress_gate.data.contract import EvalData, score_dtype
from compress_gate.errors import InputError
from compress_gate.gate._bootstrap import resamples
from compress_gate.gate._fairgrape_measures import (AP_METRICS, AP_NOT_COMPUTED, FAIRGRAPE_METRICS, PIE_METRICS,
                                                    fairgrape_section, not_measurable, pair_measured, resampled,
                                                    undefined_reason)
from compress_gate.gate._judge import judge_limit
from compress_gate.gate._limits import UnitValues
from compress_gate.gate._measures import MEMBER_METRICS, Layout, PopulationMetrics
from compress_gate.gate._paired import RATE_METRICS, rate_counts
from compress_gate.gate._report import build_report
from compress_gate.gate._stats import (ROW_FAMILIES, SCORE_FAMILIES, Candidates, MemberSpec, Plan, Prelude,
                                       PreludePlan, ShardInput, Stats, merge, shard_prelude, shard_statistics)
from compress_gate.gate._unit_sizes import unit_sizes
from compress_gate.report.schema import Report, RunSection
from compress_gate.mitigation import Overrides, calibrate_thresholds
from compress_gate.mitigation import budget_count

__all__ = ["GateResult", "evaluate", "evaluate_shards", "run_outcome", "JUDGED_POPULATION"]

#: ``gate.judge`` -> the population the limits judge: the raw student, the student with its
#: calibrated thresholds (the default: no label of a judged row enters), or with its thresholds
#: and overrides (``catalogue``: a closed set of known inputs).
JUDGED_POPULATION = {"raw": "raw", "thresholds": "thresholds", "catalogue": "mitigated"}
#: Point families per population: the teacher and the raw students get every report number.
_REPORT_FAMILIES = ("confusion", "calibration", "uncertainty", "interrelation", "histogram")
#: Metrics finished from every resample's CEV/SDE of a population against the teacher.
BALANCE_METRICS = frozenset(m for m, spec in GATED_METRICS.items() if spec.source == "balance")
#: Runs a per-shard function over the shards and yields results that add up to the sum of its
#: values (``map``: one per shard; on Ray: one sum per run of shards, which it reads from
#: the references it is given).
ShardMap = Callable[[Callable[[ShardInput], Any], Any], Iterator[Any]]


@dataclass(frozen=True)
class GateResult:
    """What the gate decided and what ships with the student.

    ``report`` is the typed report.json (:class:`~compress_gate.report.schema.Report`); ``thresholds`` are the
    calibrated thresholds of the first (shipped) student, None without calibration or
    for multi-class; ``overrides`` is the content of ``overrides.json``'s ``overrides``.
    """

    report: Report
    thresholds: np.ndarray | None
    overrides: Overrides

    @property
    def passed(self) -> bool:
        """Whether the gate passed (:attr:`Report.passed <compress_gate.report.schema.Report.passed>`)."""
        return self.report.passed

    def with_run(self, run: RunSection) -> GateResult:
        """The same result whose report carries the run's section (a new report; this one is unchanged)."""
        return replace(self, report=self.report.with_run(run))


def _check_scores(scores: Any, n: int, k: int, what: str) -> np.ndarray:
    arr = np.asarray(scores)
    if arr.shape != (n, k):
        raise InputError(f"{what}: scores have shape {arr.shape}; the gate needs ({n}, {k}): one row per "
                         "calib and test row of the eval data (in data order, see align_scores) and "
                         "one column per attribute.")
    arr = arr.astype(score_dtype(arr.dtype), copy=False)      # float64 stays float64: the precision given
    if not np.isfinite(arr).all() or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
        raise InputError(f"{what}: scores must be finite probabilities in [0, 1]. Load them with "
                         "compress_gate.data.load_predictions, which names the bad rows.")
    return arr


def _engine_measures(engine_checks: Sequence[dict] | None) -> dict[str, UnitValues]:
    if not engine_checks:
        why = ("no engine comparison was run (`compress-gate gate` on prediction files judges one "
               "engine; `compress-gate run` compares the engines)")
        return {m: UnitValues(units=(), student=np.empty(0), undefined_reason=why)
                for m, spec in GATED_METRICS.items() if spec.source == "engines"}
    units = tuple(str(c.get("engine")) for c in engine_checks)

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if c.get(key) is None else float(c[key]) for c in engine_checks])
    why = "the engine comparison has no value for this engine"
    return {"engine_agreement": UnitValues(units, column("label_agreement"), undefined_reason=why),
            "engine_score_difference": UnitValues(units, column("max_score_difference"), undefined_reason=why)}


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

    The data in memory is one shard of :func:`evaluate_shards`, which says what is computed.
    """
    scored = data.mask("calib", "test")
    k = data.n_attributes
    if not student_scores:
        raise InputError("the gate needs at least one student's scores (--student S.npz).")
    teacher_arr = _check_scores(teacher_scores, int(scored.sum()), k, "teacher")
    students = [_check_scores(s, int(scored.sum()), k, f"student {i + 1}") for i, s in enumerate(student_scores)]
    shard = ShardInput.from_data(data, teacher_arr, students, name="eval data")
    return evaluate_shards([shard], Layout(data.task, data.attribute_names, data.group_names), config,
                           n_test=int((data.split == "test").sum()), n_students=len(students),
                           engine_checks=engine_checks, benchmarks=benchmarks, inputs=inputs,
                           deployment_engine=deployment_engine)


def _overrides(candidates: Candidates, attributes: list[str], layout: Layout) -> Overrides:
    """``overrides.json``'s entries from the merged candidates of the chosen attributes (the
    human label; multi-class: the whole prediction, ``{"class": name}``)."""
    names = list(layout.attribute_names)
    out: Overrides = {}
    for attr in attributes:
        i = names.index(attr)
        for sample, label in zip(candidates.ids[i].tolist(), candidates.labels[i].tolist()):
            if layout.task == "multiclass":
                out[str(sample)] = {"class": names[label]}
            else:
                out.setdefault(str(sample), {})[attr] = int(label)
    return out


def _populations(n_students: int, thresholds: list[np.ndarray] | None, has_overrides: bool
                 ) -> tuple[dict[str, tuple[MemberSpec, ...]], dict[str, str]]:
    """Members per population and the aliases of populations that predict like another."""
    students = range(1, n_students + 1)
    specs = {"teacher": (MemberSpec(0),), "raw": tuple(MemberSpec(i) for i in students)}
    aliases = {}
    if thresholds is not None:
        specs["thresholds"] = tuple(MemberSpec(i, thresholds=True) for i in students)
    else:
        aliases["thresholds"] = "raw"
    if has_overrides:
        specs["mitigated"] = tuple(MemberSpec(i, thresholds=thresholds is not None, overrides=True) for i in students)
    else:
        aliases["mitigated"] = aliases.get("thresholds", "thresholds")
    return specs, aliases


def _plan(config: GateConfig, layout: Layout, specs: dict, aliases: dict, thresholds: list[np.ndarray] | None,
          overrides: Overrides, judged: str, member_metrics: list[str], balance_keys: list[str],
          fairgrape: bool, with_ap: bool, pie_resampled: bool) -> Plan:
    """What the shards count: every report number's point tables, the resample tables of the
    metrics in ``member_metrics`` and of the balance keys (CEV/SDE) only, and with ``fairgrape``
    FairGRAPE's joint groups (teacher and judged), PIE counts (judged; resampled with
    ``pie_resampled``) and, with ``with_ap``, score rows (teacher and raw students: per-group AP)."""
    point = {key: ("confusion",) for key in specs}
    point["teacher"] = point["raw"] = _REPORT_FAMILIES
    if overrides:
        point["teacher"] += ("uncovered",)
        point[aliases.get("mitigated", "mitigated")] += ("uncovered",)
    if fairgrape:
        if with_ap:
            for key in ("teacher", "raw"):
                point[key] += ("rows",)
        for key in dict.fromkeys(("teacher", judged)):
            point[key] += ("joint_groups",)
    wanted = {f for m in member_metrics for f in MEMBER_METRICS[m].families} - ROW_FAMILIES
    boot: dict[str, set[str]] = {}
    for key in dict.fromkeys(["teacher", judged, *balance_keys]):
        # CEV and SDE of a balance key: its FPR/FNR and the teacher's, in every resample
        families = (wanted if key in ("teacher", judged) else set()) | ({"confusion"} if balance_keys else set())
        own = key if key == "teacher" else "raw"      # a student's score families are its raw ones
        boot.setdefault(own, set()).update(families & SCORE_FAMILIES)
        boot.setdefault(key, set()).update(families - SCORE_FAMILIES)
    return Plan(task=layout.task, attribute_names=layout.attribute_names, populations=specs, point=point,
                boot={k: tuple(sorted(v)) for k, v in boot.items() if v}, n_resamples=config.n_resamples,
                seed=config.seed, thresholds=tuple(thresholds) if thresholds is not None else
                (None,) * len(specs["raw"]), overrides=overrides, group_names=layout.group_names,
                pie=judged if fairgrape else None, pie_resampled=fairgrape and pie_resampled,
                paired=judged if len(specs[judged]) == 1 and RATE_METRICS & set(member_metrics) else None)


def evaluate_shards(shards: Iterable[Any], layout: Layout, config: GateConfig, *, n_test: int,
                    n_students: int, map_shards: ShardMap = map,
                    engine_checks: list[dict] | None = None,
                    benchmarks: dict | None = None, inputs: dict | None = None,
                    deployment_engine: str = "onnxruntime") -> GateResult:
    """Judge students against their teacher from per-shard statistics: two passes over ``shards``.

    ``shards`` is iterated twice (a list, or a re-iterable reader); ``map_shards(fn, shards)``
    runs the pure per-shard functions (:func:`~compress_gate.gate._stats.shard_prelude`,
    :func:`~compress_gate.gate._stats.shard_statistics`) and yields their results (per shard,
    or sums of runs of shards), which are added as they arrive. With the default ``map``,
    ``shards`` are :class:`~compress_gate.gate._stats.ShardInput` s; another map may take
    references to them that it reads where it computes. ``n_test`` (test rows in all shards) sizes the override budget.

    Every number of DESIGN.md is computed for the teacher and the student population on
    the test split, except FairGRAPE's per-group AP, which is computed only when a limit gates an
    AP metric (:data:`AP_METRICS`): it is not additive, its rows cost O(n) memory in the merging
    process (n x (8 + G + 5K) bytes per model) and sorting them costs more than the whole
    bootstrap of the other numbers; the report's AP values are then null with the reason. Only
    the gated numbers get Poisson bootstrap resamples over test samples (weights keyed by seed,
    id hash and resample, shared by teacher and students, so changes are paired and nothing
    depends on the sharding), and the rates of a one-member population a paired point table for
    score bounds (:mod:`compress_gate.gate._paired`); every other number is a point value, and
    the report's ``estimates`` section says which is which (:func:`estimates_section`). Limits judge the
    population :data:`JUDGED_POPULATION` names for ``config.judge``: by default the student
    with its calibrated thresholds, so no override (no human label of a judged row) enters
    the judged predictions and the verdict does not depend on the override budget. Each
    limit passes, fails or has not enough evidence per unit (:func:`~compress_gate.gate._judge.judge_limit`,
    docs/gate.md "Decisions"); the run passes only if every limit
    passes (:func:`run_outcome`); with no limits it passes and says so.
    """
    mitigation = config.mitigation
    if mitigation.calibrate_thresholds and layout.task == "multiclass":
        raise InputError("gate.mitigation.calibrate_thresholds: true applies to multi-label data only; "
                         "this data is multi-class (the prediction is the argmax class). Set it to false.")
    count = budget_count(mitigation.override_budget, n_test) if mitigation.override_budget > 0 else 0
    prelude_plan = PreludePlan(layout.task, count, calib_rows=mitigation.calibrate_thresholds)
    prelude = merge(map_shards(partial(shard_prelude, plan=prelude_plan), shards))
    if float(prelude.train.n) == 0:
        raise InputError("the eval data has no row with split = 'train'. BA and TCB take their direction "
                         "from training labels: add the training rows' labels and groups with "
                         "split = 'train' (they need no scores).")
    thresholds, overrides, override_attrs = _mitigation(prelude, config, layout)
    applied = mitigation.calibrate_thresholds or mitigation.override_budget > 0
    specs, aliases = _populations(n_students, thresholds, bool(overrides))
    judged = aliases.get(JUDGED_POPULATION[config.judge], JUDGED_POPULATION[config.judge])
    limited = {lim.metric for lim in config.limits}
    member_metrics = sorted(m for m in limited if GATED_METRICS[m].source == "member")
    unmeasured = not_measurable(layout.group_names, prelude.patterns)     # FairGRAPE's joint groups
    fair_members, fair_pairs = ([], []) if unmeasured else resampled(limited)
    boot_members = sorted({m for m in member_metrics if not unmeasured or m not in FAIRGRAPE_METRICS}
                          | set(fair_members))
    balance_keys = [judged] if limited & BALANCE_METRICS else []
    with_ap = bool(limited & AP_METRICS)
    plan = _plan(config, layout, specs, aliases, thresholds, overrides, judged, boot_members, balance_keys,
                 fairgrape=not unmeasured, with_ap=with_ap, pie_resampled=bool(set(fair_pairs) & PIE_METRICS))
    stats = merge(map_shards(partial(shard_statistics, plan=plan), shards))
    measurer = PopulationMetrics(layout=layout, stats=stats, train=prelude.train, sizes={k: len(v) for k, v in specs.items()},
                        aliases=aliases, seed=config.seed, n_resamples=config.n_resamples)
    boot = None if config.n_resamples == 0 else resamples(measurer, judged=judged, metrics_wanted=boot_members,
                                                          balance_keys=balance_keys, pair_metrics=fair_pairs)
    n_overridden = int(stats.tables[("n_overridden",)])
    measured = _gated_values(measurer, stats, layout, judged=judged, limited=limited, member_metrics=member_metrics,
                             unmeasured=unmeasured, balance_keys=balance_keys, boot=boot,
                             engine_checks=engine_checks, n_test=n_test, n_overridden=n_overridden)
    entries = [judge_limit(limit, measured[limit.metric], confidence=config.confidence, n_samples=n_test,
                           n_limits=len(config.limits)) for limit in config.limits]
    outcome = run_outcome([entry.outcome for entry in entries])
    shipped = None if thresholds is None else thresholds[0]
    report = build_report(
        layout=layout, config=config, measurer=measurer, entries=entries, outcome=outcome, judged=config.judge,
        boot=boot, applied=applied, thresholds=shipped, n_overridden=n_overridden, override_attrs=override_attrs,
        n_calib=int(prelude.n_calib), n_test=n_test, engine_checks=engine_checks,
        deployment_engine=deployment_engine, benchmarks=benchmarks, inputs=inputs,
        fairgrape=None if unmeasured else fairgrape_section(measurer, judged, boot, confidence=config.confidence,
                                                            population=judged, with_ap=with_ap),
        not_computed=_not_computed(measured, unmeasured, with_ap))
    return GateResult(report=report, thresholds=shipped, overrides=overrides)


def _mitigation(prelude: Prelude, config: GateConfig, layout: Layout
                ) -> tuple[list[np.ndarray] | None, Overrides, list[str]]:
    """The mitigation the prelude decides: each student's thresholds calibrated on the calib rows
    (None without calibration), and the overrides with the attributes they cover: those where the
    teacher already shows a positive BA (its largest defined BA over identities > 0), none
    without an override budget."""
    mitigation = config.mitigation
    thresholds = ([calibrate_thresholds(prelude.calib_labels, s) for s in prelude.calib_scores]
                  if mitigation.calibrate_thresholds else None)
    if mitigation.override_budget <= 0:
        return thresholds, {}, []
    ba = metrics.bias_amplification_from_counts(prelude.teacher, prelude.train).values
    positive = np.nan_to_num(ba, nan=-np.inf).max(axis=1) > 0
    override_attrs = [name for name, keep in zip(layout.attribute_names, positive) if keep]
    return thresholds, _overrides(prelude.candidates, override_attrs, layout), override_attrs


def _gated_values(measurer: PopulationMetrics, stats: Stats, layout: Layout, *, judged: str, limited: set[str],
                  member_metrics: list[str], unmeasured: str, balance_keys: list[str], boot: Any,
                  engine_checks: list[dict] | None, n_test: int, n_overridden: int) -> dict[str, UnitValues]:
    """metric -> its per-unit values for the limits to judge: the engine checks, the override share
    (overridden test rows / ``n_test``), CEV and SDE of the ``judged`` population, FairGRAPE's
    teacher-pair metrics (empty with the reason when the joint groups cannot be measured) and every
    limited member metric, each with its resamples where resampled (``boot``) and its unit sizes."""
    measured = _engine_measures(engine_checks)
    measured["override_share"] = UnitValues(("model",), np.array([n_overridden / n_test]))
    for name in (m for m, spec in GATED_METRICS.items() if spec.source == "balance"):
        point = measurer.error_balance(judged)[0 if name == "cev" else 1]
        measured[name] = UnitValues(("model",), point.reshape(1),
                                    student_boot=None if judged not in balance_keys or boot is None
                                    else boot.balance[judged][name][:, None],
                                    undefined_reason="no attribute has a nonzero teacher FPR and FNR",
                                    members=np.array([float(n_test)]))
    for metric in (m for m in limited if m in FAIRGRAPE_METRICS):
        if unmeasured:
            measured[metric] = UnitValues((), np.empty(0), undefined_reason=unmeasured)
        elif GATED_METRICS[metric].source == "teacher_pair":
            measured[metric] = pair_measured(measurer, judged, metric, boot)
    for metric in (m for m in member_metrics if m not in measured):
        ba_reasons = _ba_not_measured(measurer) if metric == "ba" else {}
        members, positives = _unit_sizes(measurer, metric, n_test)
        measured[metric] = UnitValues(
            measurer.units(metric), measurer.values(judged, metric),
            teacher=measurer.values("teacher", metric),
            student_boot=None if boot is None else boot.values[(judged, metric)],
            teacher_boot=None if boot is None else boot.values[("teacher", metric)],
            not_measured=ba_reasons, by_definition=_by_definition(ba_reasons),
            undefined_reason=_ba_undefined_reason(layout) if metric == "ba" else
            undefined_reason(metric) if metric in FAIRGRAPE_METRICS else "",
            rates=_rates(measurer, stats, metric, judged), members=members, positives=positives)
    return measured


def _not_computed(measured: dict[str, UnitValues], unmeasured: str, with_ap: bool) -> dict[str, str]:
    """metric -> why the gate did not compute it: the engine comparison was not run, FairGRAPE's
    joint groups are not measurable (``unmeasured``), or no limit gates AP (``with_ap`` False)."""
    out = {m: v.undefined_reason for m, v in measured.items() if GATED_METRICS[m].source == "engines" and not v.units}
    if unmeasured:
        out.update(dict.fromkeys(FAIRGRAPE_METRICS, unmeasured))
    elif not with_ap:
        out.update(dict.fromkeys(AP_METRICS, AP_NOT_COMPUTED))
    return out


def run_outcome(outcomes: Sequence[str]) -> str:
    """The run's outcome from its limits': ``fail`` if any limit failed, else ``not_enough_evidence``
    if any is undecided, else ``pass`` (also with no limits). The run releases only on ``pass``."""
    if "fail" in outcomes:
        return "fail"
    return "not_enough_evidence" if "not_enough_evidence" in outcomes else "pass"


def _rates(measurer: PopulationMetrics, stats: object, metric: str, judged: str) -> object:
    """The paired :class:`~compress_gate.gate._paired.RateCounts` of a rate metric, when counted."""
    paired = stats.tables.get(("paired", judged))                     # type: ignore[attr-defined]
    if paired is None or metric not in RATE_METRICS:
        return None
    return rate_counts(metric, paired, measurer.tables("teacher", 0)["confusion"], measurer.layout.task)


def _unit_sizes(measurer: PopulationMetrics, metric: str, n_test: int
                ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each unit's test rows and positives, from the teacher's point tables."""
    tables = measurer.tables("teacher", 0)
    return unit_sizes(metric, tables["confusion"], tables.get("joint_groups"), n_test,
                      len(measurer.layout.group_names))


def _ba_not_measured(measurer: PopulationMetrics) -> dict[str, str]:
    """unit -> reason for the (attribute, identity) pairs whose BA is not computed."""
    reasons = measurer.bias_amplification("teacher", 0).reasons
    units = measurer.units("ba")
    return {unit: str(reason) for unit, reason in zip(units, np.asarray(reasons).reshape(-1)) if reason}


def _by_definition(reasons: dict[str, str]) -> frozenset[str]:
    """The units BA leaves out by its definition (no training direction), not for the test data's size
    (fewer than 10 positive test labels in or outside the group: those are too small)."""
    return frozenset(unit for unit, why in reasons.items() if not why.startswith("fewer than"))


def _ba_undefined_reason(layout: Layout) -> str:
    """Why BA is undefined: no identity group at all, else a model without positive predictions."""
    if not layout.group_names:
        return ("the eval data has no identity group column (`group__<name>`), so BA has no "
                "(attribute, identity) pair to measure; add the group columns to data.npz")
    return "a model has no positive prediction"

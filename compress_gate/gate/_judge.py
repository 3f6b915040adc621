"""Judging one limit: per-unit evidence, the decision rule, and its typed report entry.

:func:`judge_limit` sorts a metric's units into measured, not measured (too small, or
undefined for the teacher) and student-undefined ones, takes each measured unit's evidence
(score statistics for rates with paired counts, the paired bootstrap otherwise, the exact
value for numbers without sampling error) and decides with
:func:`compress_gate.gate._decision.decide`.
"""

from __future__ import annotations

import numpy as np

from compress_gate._format import fmt
from compress_gate.config.gate import GATED_METRICS, Limit
from compress_gate.gate._decision import (POWER, TIE_TOLERANCE, Decision, UnitEvidence, bootstrap_evidence, decide,
                                          rows_to_decide, score_evidence)
from compress_gate.gate._limits import UnitValues, compared_change
from compress_gate.gate._paired import RateCounts
from compress_gate.report.schema import LimitResult, UnitResult

__all__ = ["judge_limit"]

_SHOW = 5


def _listed(units: list[str]) -> str:
    return ", ".join(units[:_SHOW]) + (f" (and {len(units) - _SHOW} more)" if len(units) > _SHOW else "")


def _evidence(limit: Limit, measured: UnitValues, keep: np.ndarray, compared: np.ndarray, alpha: float
              ) -> UnitEvidence:
    """The per-unit evidence of the units selected by the mask ``keep``, on ``compared`` (the compared values).

    A metric without sampling error (the override share, engine checks) gets exact evidence:
    bounds equal to the point, p-value 0 where the point is beyond the limit (past the tie
    tolerance) and 1 otherwise, no standard error. A rate with paired counts and an absolute
    (or no) change gets score statistics (:func:`score_evidence`: Wilson or Tango); every
    other metric the paired bootstrap of the compared change (:func:`bootstrap_evidence`),
    degenerate when no resamples were kept.
    """
    point = compared[keep]
    if not GATED_METRICS[limit.metric].has_interval:      # override share, engine checks: no sampling error
        tie = TIE_TOLERANCE * max(1.0, abs(limit.value))
        p_above, p_below = np.where(point > limit.value + tie, 0.0, 1.0), np.where(point < limit.value - tie, 0.0, 1.0)
        return UnitEvidence(point, point, point, p_above, p_below, np.full(point.shape, np.nan),
                            ("exact",) * point.size)
    if measured.rates is not None and limit.change in (None, "absolute"):
        r = measured.rates
        return score_evidence(RateCounts(*(a[keep] for a in (r.n, r.student, r.teacher, r.b, r.c))),
                              limit.change, limit.value, alpha)
    boot = None
    if measured.student_boot is not None:
        teacher_boot = None if measured.teacher_boot is None else measured.teacher_boot[:, keep]
        boot = compared_change(limit.change, measured.student_boot[:, keep], teacher_boot)
    return bootstrap_evidence(point, boot, limit.value, alpha)


def _units(measured: UnitValues, states: dict[int, str], evidence: UnitEvidence | None, decision: Decision | None,
           kept: np.ndarray, reasons: dict[int, str]) -> list[UnitResult]:
    """Every unit's row of the report, in the metric's unit order."""
    position = {int(u): i for i, u in enumerate(np.flatnonzero(kept))}

    def count(values: np.ndarray | None, u: int) -> int | None:
        return None if values is None or not np.isfinite(values[u]) else int(round(float(values[u])))
    rows = []
    for u, name in enumerate(measured.units):
        row = {"name": name, "members": count(measured.members, u), "positives": count(measured.positives, u),
               "trials": None, "outcome": states.get(u, "undecided"), "reason": reasons.get(u)}
        if u in position and evidence is not None and decision is not None:
            i = position[u]
            row.update(point=float(evidence.point[i]), bound=float(decision.bound[i]),
                       p_outside=float(decision.p_outside[i]), method=evidence.method[i],
                       outcome=decision.unit_outcomes[i])
            if measured.rates is not None and evidence.method[i] in ("wilson", "tango"):
                row["trials"] = count(measured.rates.n, u)
        rows.append(UnitResult(**row))
    return rows


def judge_limit(limit: Limit, measured: UnitValues, *, confidence: float, n_samples: int | None = None,
                n_limits: int = 1) -> LimitResult:
    """``limit`` judged on ``measured`` (docs/gate.md, "Decisions").

    A unit whose teacher value is undefined is *not measured* (with the metric's reason, e.g.
    BA's "N_test(A=1, I=1) = 3 < 10"): with ``unmeasured: undecided`` (the default) the limit
    cannot pass; with ``exclude`` it is left out and listed. The limit fails closed when the
    student is undefined where the teacher is defined, or when nothing is left to measure and
    no unit was set aside as too small. Otherwise :func:`~compress_gate.gate._decision.decide`
    judges the measured units at the one-sided level α = (1 − ``confidence``)/2, Holm's family
    level α / ``n_limits``; an undecided limit gets ``n_needed`` test rows from
    :func:`~compress_gate.gate._decision.rows_to_decide` with ``n_samples`` test rows (None:
    not estimated).
    """
    spec = GATED_METRICS[limit.metric]
    alpha = (1.0 - confidence) / 2.0
    base = {"name": limit.name, "metric": limit.metric, "change": limit.change, "bound": limit.bound,
            "limit": limit.value, "direction": limit.direction, "alpha": alpha,
            "holm_level": alpha / max(n_limits, 1), "observed": None, "gated": None, "passed": False,
            "outcome": "fail"}
    units = list(measured.units)
    if not units:
        why_none = measured.undefined_reason or f"no {spec.units} to measure"
        return LimitResult(**base, reason=f"fails closed: {why_none}.")
    student = np.asarray(measured.student, dtype=np.float64)
    teacher = None if measured.teacher is None else np.asarray(measured.teacher, dtype=np.float64)
    measurable = np.ones(len(units), dtype=bool) if teacher is None else ~np.isnan(teacher)
    default = measured.undefined_reason or f"the teacher's {limit.metric} is undefined (no rows to measure it on)"
    reasons = {u: measured.not_measured.get(units[u], default) for u in np.flatnonzero(~measurable)}
    set_aside = "excluded" if limit.unmeasured == "exclude" else "not_measured"
    by_definition = measured.by_definition if spec.unit != "model" else frozenset(units)   # a model-wide
    states = {u: "excluded" if units[u] in by_definition else set_aside for u in reasons}    # number is never small
    excluded = [units[u] for u in reasons if states[u] == "excluded"]
    small = {u: why for u, why in reasons.items() if states[u] == "not_measured"}
    why = "; ".join(sorted(set(reasons.values()))[:3])
    compared = compared_change(limit.change, student, teacher)
    undefined = [units[u] for u in np.flatnonzero(measurable & np.isnan(student))]
    if undefined:
        what = "student" if teacher is not None else "value"
        reason = (f"fails closed: the {what} {limit.metric} is undefined for {_listed(undefined)}"
                  + (" where the teacher's is defined" if teacher is not None else "")
                  + (f" ({measured.undefined_reason})" if measured.undefined_reason else "") + ".")
        return LimitResult(**base, reason=reason, excluded=excluded,
                           units=_units(measured, states, None, None, measurable, reasons))
    kept = measurable & ~np.isnan(compared)
    if not kept.any():
        if small:
            return LimitResult(**{**base, "outcome": "not_enough_evidence"}, units=_units(
                measured, states, None, None, kept, reasons), reason=(
                f"not enough evidence: no {spec.units} can be measured ({why}); more test rows in the small "
                f"units would measure them, or `unmeasured: exclude` leaves them out."))
        detail = why or measured.undefined_reason or f"every {spec.units} is undefined for the teacher"
        return LimitResult(**base, excluded=excluded, units=_units(measured, states, None, None, kept, reasons),
                           reason=f"fails closed: nothing left to measure ({detail}).")
    evidence = _evidence(limit, measured, kept, compared, alpha)
    decision = decide(limit, evidence, alpha=alpha, n_limits=n_limits)
    outcome = decision.outcome
    if outcome == "pass" and small:
        outcome = "not_enough_evidence"
    i = _deciding(limit, evidence, decision)
    kept_names = [units[u] for u in np.flatnonzero(kept)]
    result = {**base, "outcome": outcome, "passed": outcome == "pass", "excluded": excluded,
              "unit": kept_names[i], "observed": float(evidence.point[i]), "gated": float(decision.bound[i]),
              "ci": None if np.isnan(evidence.lower[i]) and np.isnan(evidence.upper[i]) else
              [float(evidence.lower[i]), float(evidence.upper[i])],
              "units": _units(measured, states, evidence, decision, kept, reasons)}
    if outcome == "not_enough_evidence" and n_samples is not None:
        result["n_needed"] = rows_to_decide(limit, evidence, decision, n_test=n_samples, alpha=alpha)
        result["power"] = POWER
    result["reason"] = _reason(limit, spec.units, evidence, decision, result, len(small), len(excluded), why,
                               n_samples is not None)
    return LimitResult(**result)


def _deciding(limit: Limit, evidence: UnitEvidence, decision: Decision) -> int:
    """The unit that decides: a failed one (the farthest point outside with ``bound: point``, else
    the smallest p-value), else the worst bound (a degenerate unit first)."""
    failed = [i for i, s in enumerate(decision.unit_outcomes) if s == "fail"]
    sign = 1.0 if limit.direction == "max" else -1.0
    if failed and limit.bound == "point":
        return max(failed, key=lambda i: (sign * float(evidence.point[i]), -i))
    if failed:
        return min(failed, key=lambda i: (np.nan_to_num(decision.p_outside[i], nan=1.0), i))
    badness = np.where(np.isnan(decision.bound), np.inf, sign * decision.bound)
    return int(np.argmax(badness))


def _reason(limit: Limit, kind: str, evidence: UnitEvidence, decision: Decision, result: dict,
            n_small: int, n_excluded: int, why: str, estimated: bool) -> str:
    """One sentence for the report: what decided, on which unit, and what is missing."""
    side = "upper" if limit.direction == "max" else "lower"
    sign = "<=" if limit.direction == "max" else ">="
    inside, outside = (sign, ">" if sign == "<=" else "<")
    i = _deciding(limit, evidence, decision)
    where = f"{kind} {result['unit']}: " if len(evidence.point) > 1 or n_small or n_excluded else ""
    point = (f"{where}point {fmt(result['observed'], infinite=True)}, one-sided {100 * (1 - result['alpha']):g}% "
             f"{side} bound {fmt(result['gated'], infinite=True)} ({evidence.method[i]})")
    states = decision.unit_outcomes
    notes = []
    if result["outcome"] == "pass":
        text = f"every {kind}'s {side} bound {inside} {limit.value:g} ({point})"
    elif result["outcome"] == "fail":
        n_out = states.count("fail")
        test = "the max-T test" if evidence.adjusted else "Holm's test"
        how = ("point estimate outside (`bound: point`)" if limit.bound == "point" else
               f"outside by {test} at family level {result['holm_level']:.4g}, p = "
               f"{fmt(float(decision.p_outside[i]))}")
        text = f"{n_out} {kind}(s) {how} ({point} {outside} {limit.value:g})"
    else:
        text = f"not enough evidence ({point}; limit {sign} {limit.value:g})"
        if "degenerate" in states:
            notes.append(f"{states.count('degenerate')} {kind}(s) have a degenerate bootstrap (every resample "
                         "the same value): never passed on a zero-width interval")
        if estimated:
            notes.append(f"about {result['n_needed']:,} test rows would decide it with power {POWER:g}"
                         if result.get("n_needed") else "no estimate of the test rows that would decide it (a "
                         "point on the limit, a degenerate or infinite value)")
    if n_small:
        notes.append(f"{n_small} {kind}(s) too small to measure, so the limit cannot pass (`unmeasured: exclude` "
                     f"leaves them out): {why}")
    if n_excluded:
        notes.append(f"{n_excluded} {kind}(s) not measured and left out: {why}")
    return text + "".join(f"; {note}" for note in notes) + "."

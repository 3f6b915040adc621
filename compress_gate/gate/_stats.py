"""The gate's sufficient statistics: what one shard of the eval data contributes, merged by addition.

The gate reads its data in two passes over the shards (in memory, the data is one shard):

1. :func:`shard_prelude` -> :class:`Prelude`: training counts (BA's and TCB's direction),
   the number of calib rows and, when thresholds are calibrated, the calib rows themselves
   (gathered in memory: ``n_calib * K * (1 + 4 * n_students)`` bytes), the joint groups (membership patterns over
   the identity columns) of the test rows, the teacher's test counts (which
   attributes get overrides) and, per attribute, the override candidates: the shard's
   ``k`` test rows the teacher is least certain about, ordered by (|p - 0.5|, id), so the
   global top k is the top k of the merged candidates whatever the shard order.
2. :func:`shard_statistics` -> :class:`Stats`: per population member, additive count
   tables (:data:`FAMILIES`) for the point estimate and for each of B resamples, whose
   Poisson weights come from the shard's own ids
   (:func:`~compress_gate.metrics.poisson_bootstrap.poisson_weight_chunks`), and FairGRAPE's PIE
   counts of a population against the teacher. One family is rows, not counts:
   ``rows`` (:class:`ScoreRows`: id hash, labels, identity columns and scores per test row),
   for per-group AP, which sorts scores and so has no additive table. Rows concatenate
   across shards (O(n) memory) and are sorted by id hash when finished, and their
   resamples' Poisson weights are regenerated from the hashes, so AP does not depend on
   the sharding either.

Every table holds integers in float64 (counts, and ECE's fixed-point bin sums), so merged
tables are exact and do not depend on the number of shards, their order or the order of
the rows within them. Both functions are pure top-level functions of picklable arguments,
so any executor (``map``, Ray tasks) can run them; memory per call is one shard's rows,
the B-sized tables and the Poisson weights of one run of test rows for all B resamples, at
most :data:`CHUNK_BYTES` (the rows are read in group-cell order, so the count tables never
copy it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field
from typing import Any

import numpy as np

from compress_gate import metrics
from compress_gate._id_hash import hash_ids
from compress_gate.data.contract import EvalData
from compress_gate.gate._paired import paired_counts
from compress_gate.metrics.poisson_bootstrap import poisson_weight_chunks
from compress_gate.mitigation import Overrides, apply_overrides, apply_thresholds, overridden_rows

__all__ = ["CHUNK_BYTES", "FAMILIES", "SCORE_FAMILIES", "ROW_FAMILIES", "ScoreRows", "ShardInput", "TestRows",
           "MemberRows", "MemberSpec", "PreludePlan",
           "Prelude", "Plan", "Stats", "shard_prelude", "shard_statistics", "merge"]


#: Bytes of the float32 Poisson weights of one run of test rows (B resamples x the run's rows).
CHUNK_BYTES = 128 * 2**20


@dataclass(frozen=True)
class ShardInput:
    """One shard's rows: its scored (calib and test) rows with every model's scores, and its
    training rows (labels and groups only). ``name`` is the shard file, for messages."""

    name: str
    ids: np.ndarray                  # (n,) str
    split: np.ndarray                # (n,) "calib" | "test"
    labels: np.ndarray               # (n, K) uint8
    groups: np.ndarray               # (n, G) bool
    teacher: np.ndarray              # (n, K) float32, or float64 as given
    students: tuple[np.ndarray, ...]  # each (n, K) float32, or float64 as given
    train_labels: np.ndarray         # (n_train, K)
    train_groups: np.ndarray         # (n_train, G)

    @classmethod
    def from_data(cls, data: EvalData, teacher: np.ndarray, students: list[np.ndarray], name: str) -> ShardInput:
        """The shard of ``data`` whose calib and test rows have the scores ``teacher``, ``students``
        (aligned to ``data.mask("calib", "test")``)."""
        scored, train = data.mask("calib", "test"), data.mask("train")
        return cls(name=name, ids=data.ids[scored], split=data.split[scored], labels=data.labels[scored],
                   groups=data.groups[scored], teacher=teacher, students=tuple(students),
                   train_labels=data.labels[train], train_groups=data.groups[train])

    def scores(self, model: int) -> np.ndarray:
        """Scores of model ``model``: 0 the teacher, i >= 1 student i."""
        return self.teacher if model == 0 else self.students[model - 1]


@dataclass(frozen=True)
class TestRows:
    """A shard's test rows: what every count table is counted over."""

    ids: np.ndarray
    id_hash: np.ndarray
    y_true: np.ndarray
    groups: np.ndarray
    uncovered: np.ndarray | None     # (n,) float64 1/0: rows without an override (None: no overrides)
    task: str
    group_names: tuple[str, ...]


@dataclass(frozen=True)
class MemberRows:
    """One population member's labels and scores on a shard's test rows."""

    y_pred: np.ndarray
    y_score: np.ndarray


@dataclass(frozen=True)
class ScoreRows:
    """One member's test rows for per-group AP: ``id_hash`` (n,) uint64, ``y_true`` (n, K),
    ``groups`` (n, G) and ``y_score`` (n, K). ``+`` concatenates (the rows of both shards);
    :meth:`by_hash` puts them in id-hash order, which no sharding or row order changes."""

    id_hash: np.ndarray
    y_true: np.ndarray
    groups: np.ndarray
    y_score: np.ndarray

    def __add__(self, other: ScoreRows) -> ScoreRows:
        return ScoreRows(*(np.concatenate([a, b]) for a, b in zip(astuple(self), astuple(other))))

    def by_hash(self) -> ScoreRows:
        """The same rows sorted by id hash (ids are unique, so the order is total)."""
        order = np.argsort(self.id_hash, kind="stable")
        return ScoreRows(*(a[order] for a in astuple(self)))


Family = Callable[[TestRows, MemberRows, "np.ndarray | None"], Any]


def _histogram(test: TestRows, member: MemberRows, w: np.ndarray | None) -> np.ndarray:
    return np.histogram(member.y_score, bins=10, range=(0.0, 1.0))[0].astype(np.float64)


#: family name -> its count table of (test rows, member, weights None or (b, n)); every table
#: adds (``a + b``) and holds integers. ``histogram``, ``interrelation`` and ``uncovered`` are
#: point tables only (the report's); ``uncovered`` counts the rows without an override;
#: ``joint_groups`` are FairGRAPE's counts per joint group (merged by membership pattern);
#: ``rows`` is a point table of rows (:data:`ROW_FAMILIES`), concatenated, not counted.
FAMILIES: dict[str, Family] = {
    "confusion": lambda t, m, w: metrics.subgroup_counts(t.y_true, m.y_pred, t.groups, sample_weight=w),
    "calibration": lambda t, m, w: metrics.calibration_counts(t.y_true, m.y_score, sample_weight=w),
    "uncertainty": lambda t, m, w: metrics.uncertainty_counts(m.y_score, sample_weight=w),
    "interrelation": lambda t, m, w: metrics.interrelation_counts(m.y_pred),
    "histogram": _histogram,
    "uncovered": lambda t, m, w: metrics.subgroup_counts(t.y_true, m.y_pred, t.groups, sample_weight=t.uncovered),
    "joint_groups": lambda t, m, w: metrics.joint_group_counts(t.y_true, m.y_pred, t.groups, t.group_names,
                                                               task=t.task, sample_weight=w),
    "rows": lambda t, m, w: ScoreRows(t.id_hash, t.y_true, t.groups, m.y_score),
}
#: Families that depend on a member's scores only: thresholds and overrides do not change them.
SCORE_FAMILIES = frozenset({"calibration", "uncertainty", "histogram", "rows"})
#: Families of rows rather than counts: counted for the point only; the measurer resamples them.
ROW_FAMILIES = frozenset({"rows"})


@dataclass(frozen=True)
class MemberSpec:
    """A population member: model 0 (teacher) or i (student i), with its thresholds and/or the overrides."""

    model: int
    thresholds: bool = False
    overrides: bool = False


def _member_rows(ids: np.ndarray, scores: np.ndarray, spec: MemberSpec, plan: Plan) -> MemberRows:
    """The labels of member ``spec`` on test rows ``ids`` with its model's ``scores`` there."""
    if spec.thresholds:
        y_pred = apply_thresholds(scores, plan.thresholds[spec.model - 1])
    else:
        y_pred = metrics.predict_labels(scores, task=plan.task)
    if spec.overrides:
        y_pred = apply_overrides(ids, y_pred, plan.overrides, plan.attribute_names)
    return MemberRows(y_pred=y_pred, y_score=scores)


# --- pass 1 ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PreludePlan:
    """What :func:`shard_prelude` collects: ``override_count`` candidates per attribute (0: none), and
    the calib rows when ``calib_rows`` (threshold calibration needs them; else only their number)."""

    task: str
    override_count: int
    calib_rows: bool = True


@dataclass(frozen=True)
class Candidates:
    """Per attribute, override candidates sorted by (certainty |p - 0.5|, id): ``certainty``,
    ``ids`` and ``labels`` (the human label: 0/1, or the class index for multi-class), each
    a list of K arrays of at most ``count`` rows."""

    count: int
    certainty: tuple[np.ndarray, ...]
    ids: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]

    def __add__(self, other: Candidates) -> Candidates:
        parts = [_smallest(np.concatenate([a, b]), np.concatenate([ia, ib]), np.concatenate([la, lb]), self.count)
                 for a, b, ia, ib, la, lb in zip(self.certainty, other.certainty, self.ids, other.ids,
                                                 self.labels, other.labels)]
        return Candidates(self.count, *(tuple(p[j] for p in parts) for j in range(3)))


def _smallest(certainty: np.ndarray, ids: np.ndarray, labels: np.ndarray, count: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``count`` rows with the smallest (certainty, id), in that order (ties by id string)."""
    if certainty.size > count > 0:                 # narrow to the rows at or below the count-th value
        keep = certainty <= np.partition(certainty, count - 1)[count - 1]
        certainty, ids, labels = certainty[keep], ids[keep], labels[keep]
    order = np.lexsort((ids, certainty))[:count]
    return certainty[order], ids[order], labels[order]


@dataclass(frozen=True)
class Prelude:
    """Pass 1 of the gate: what the second pass needs to know about all shards first.

    The test and calib row counts, the training counts (BA's and TCB's direction), the
    teacher's test confusion counts (which attributes get overrides), the calib labels and
    scores when thresholds are calibrated (else ``(0, K)``), the override candidates per
    attribute (the least certain test rows by (|p - 0.5|, id)) and the joint groups of the
    test rows. Merged by ``+``: counts add, calib rows concatenate (the thresholds depend on
    them as a set, not on their order), candidates keep the global top k, patterns unite."""

    n_test: np.ndarray
    n_calib: np.ndarray
    train: metrics.TrainCounts
    teacher: metrics.SubgroupCounts
    calib_labels: np.ndarray         # (n_calib, K), or (0, K) when the plan does not gather calib rows
    calib_scores: tuple[np.ndarray, ...]
    candidates: Candidates
    patterns: np.ndarray             # (J, G) bool: the distinct joint groups of the test rows, sorted

    def __add__(self, other: Prelude) -> Prelude:
        return Prelude(self.n_test + other.n_test, self.n_calib + other.n_calib, self.train + other.train,
                       self.teacher + other.teacher, np.concatenate([self.calib_labels, other.calib_labels]),
                       tuple(np.concatenate([a, b]) for a, b in zip(self.calib_scores, other.calib_scores)),
                       self.candidates + other.candidates, _patterns(np.concatenate([self.patterns, other.patterns])))


def _patterns(groups: np.ndarray) -> np.ndarray:
    """The distinct rows of a (n, G) bool array, sorted as ``np.unique(groups, axis=0)`` sorts them;
    (0, 0) without identity columns. Up to 62 columns, each row is packed into one integer
    (column 0 the most significant bit), so the sort is over n integers, not n rows."""
    n_columns = groups.shape[1]
    if n_columns == 0:
        return np.zeros((0, 0), dtype=bool)
    if n_columns > 62:
        return np.unique(groups, axis=0)
    bits = np.int64(1) << np.arange(n_columns - 1, -1, -1, dtype=np.int64)
    codes = np.unique(groups.astype(np.int64) @ bits)
    return (codes[:, None] & bits).astype(bool)


def _candidates(shard: ShardInput, test: np.ndarray, y_true: np.ndarray, plan: PreludePlan) -> Candidates:
    """The shard's override candidates per attribute (:class:`Candidates`; empty for a count of 0)."""
    k = y_true.shape[1]
    if plan.override_count == 0:
        empty = (np.zeros(0),) * k
        return Candidates(0, empty, (np.zeros(0, dtype=str),) * k, (np.zeros(0, dtype=np.int64),) * k)
    certainty = np.abs(shard.teacher[test].astype(np.float64) - 0.5)
    label = y_true.argmax(axis=1) if plan.task == "multiclass" else None
    ids = shard.ids[test].astype(str)
    parts = [_smallest(certainty[:, j], ids, (y_true[:, j] if label is None else label).astype(np.int64),
                       plan.override_count) for j in range(k)]
    return Candidates(plan.override_count, *(tuple(p[j] for p in parts) for j in range(3)))


def shard_prelude(shard: ShardInput, plan: PreludePlan) -> Prelude:
    """Pass 1 of the gate on one shard: its :class:`Prelude` (test and calib counts, training
    counts, the teacher's test counts, the calib rows when ``plan`` gathers them, the override
    candidates and the test rows' joint groups). Pure, so any executor can run it."""
    test, calib = shard.split == "test", shard.split == "calib"
    y_true = shard.labels[test]
    pred = metrics.predict_labels(shard.teacher[test], task=plan.task)
    gathered = calib if plan.calib_rows else np.zeros_like(calib)
    return Prelude(n_test=np.asarray(float(test.sum())), n_calib=np.asarray(float(calib.sum())),
                   train=metrics.train_counts(shard.train_labels, shard.train_groups),
                   teacher=metrics.subgroup_counts(y_true, pred, shard.groups[test]),
                   calib_labels=shard.labels[gathered], calib_scores=tuple(s[gathered] for s in shard.students),
                   candidates=_candidates(shard, test, y_true, plan),
                   patterns=_patterns(shard.groups[test].astype(bool)))


# --- pass 2 ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What :func:`shard_statistics` counts.

    ``populations``: key -> members; ``point`` / ``boot``: key -> the families counted for the
    point estimate / for each of ``n_resamples`` Poisson resamples (seeded with ``seed``);
    ``thresholds`` per student (None: not calibrated); ``overrides`` as shipped;
    ``cie``: the population whose modal CIEs against the teacher are counted; ``pie``: the
    population whose FairGRAPE PIE counts against the teacher are counted (None: none), for
    the point estimate and, with ``pie_resampled``, for every resample;
    ``paired``: the one-member population whose paired counts against the teacher are counted
    (:func:`compress_gate.gate._paired.paired_counts`, a point table; None: none).
    """

    task: str
    attribute_names: tuple[str, ...]
    populations: dict[str, tuple[MemberSpec, ...]]
    point: dict[str, tuple[str, ...]]
    boot: dict[str, tuple[str, ...]]
    n_resamples: int
    seed: int
    thresholds: tuple[np.ndarray | None, ...]
    overrides: Overrides = field(default_factory=dict)
    cie: str = "raw"
    group_names: tuple[str, ...] = ()
    pie: str | None = None
    pie_resampled: bool = False
    paired: str | None = None


@dataclass(frozen=True)
class Stats:
    """Merged statistics: ``tables[key]`` for keys ``("point" | "boot", population, member, family)``,
    ``("n_test",)``, ``("n_overridden",)``, ``("cie", "count" | "teacher" | "student")``
    (CIE count and, per member, the weight of uncertain scores on the CIE rows per attribute),
    ``("paired", population)`` and ``("pie", "point" | "boot", population)``
    (:class:`~compress_gate.metrics.PIECounts`)."""

    tables: dict[tuple, Any]

    def __add__(self, other: Stats) -> Stats:
        return Stats({key: value + other.tables[key] for key, value in self.tables.items()})


def merge(parts: Iterable[Any]) -> Any:
    """The sum of mergeable statistics (:class:`Stats`, :class:`Prelude`), added left to right as
    ``parts`` yields them (one part and the running sum in memory); None for no parts."""
    total = None
    for part in parts:
        total = part if total is None else total + part
    return total


def _test_rows(shard: ShardInput) -> np.ndarray:
    """Indices of the shard's test rows in the order the count tables read them
    (:func:`~compress_gate.metrics.cell_order`): their resample weights are then generated in
    that order, and no chunk of weights is gathered into it (the tables are the same in any order)."""
    test = np.flatnonzero(shard.split == "test")
    order = metrics.cell_order(shard.groups[test])
    return test if order is None else test[order]


def shard_statistics(shard: ShardInput, plan: Plan) -> Stats:
    """Pass 2 of the gate on one shard: its :class:`Stats` (every family's count tables for the
    point estimate and each of ``plan.n_resamples`` Poisson resamples, the paired, CIE and PIE
    tables, and the score rows for AP).

    The sum of the statistics of runs of its test rows (in cell order), each run counted with
    the weights of all resamples at once (at most :data:`CHUNK_BYTES` of them). So each row's
    indicator columns are built once and multiplied by every resample in one matrix product,
    rather than rebuilt for each chunk of resamples; the sum is the same for any runs (integer
    tables)."""
    test = _test_rows(shard)
    run = max(1, CHUNK_BYTES // (4 * max(plan.n_resamples, 1)))
    return merge(_run_statistics(shard, test[start:start + run], plan)
                 for start in range(0, max(test.size, 1), run))


def _run_statistics(shard: ShardInput, test: np.ndarray, plan: Plan) -> Stats:
    """The :class:`Stats` of the shard's test rows ``test`` (indices)."""
    ids = shard.ids[test]
    overridden = overridden_rows(ids, plan.overrides)
    rows = TestRows(ids=ids, id_hash=hash_ids(ids), y_true=shard.labels[test], groups=shard.groups[test],
                    uncovered=(~overridden).astype(np.float64) if plan.overrides else None, task=plan.task,
                    group_names=plan.group_names)
    specs = dict.fromkeys(spec for specs in plan.populations.values() for spec in specs)
    scores = {model: shard.scores(model)[test] for model in dict.fromkeys(spec.model for spec in specs)}
    cache = {spec: _member_rows(ids, scores[spec.model], spec, plan) for spec in specs}
    members = {key: [cache[spec] for spec in specs] for key, specs in plan.populations.items()}
    tables: dict[tuple, Any] = {("n_test",): np.asarray(float(test.size)),
                                ("n_overridden",): np.asarray(float(overridden.sum()))}
    for key, families in plan.point.items():
        for i, member in enumerate(members[key]):
            for family in families:
                tables["point", key, i, family] = FAMILIES[family](rows, member, None)
    if plan.paired is not None:
        tables["paired", plan.paired] = paired_counts(rows.y_true, members["teacher"][0].y_pred,
                                                      members[plan.paired][0].y_pred, rows.groups)
    pie = None if plan.pie is None else _pie_counter(rows, members["teacher"], members[plan.pie], plan)
    if pie is not None:
        tables["pie", "point", plan.pie] = pie(None)
    wanted = [(key, i, family) for key, families in plan.boot.items()
              for i in range(len(members[key])) for family in families]
    if pie is not None and plan.pie_resampled:
        wanted.append(("pie",))
    if wanted and plan.n_resamples > 0:          # every resample's weights of these rows in one matrix
        weights, = poisson_weight_chunks(rows.id_hash, seed=plan.seed, n_resamples=plan.n_resamples,
                                         chunk_size=plan.n_resamples)
        tables.update({("pie", "boot", plan.pie) if k == ("pie",) else ("boot",) + k:
                       pie(weights) if k == ("pie",) else FAMILIES[k[2]](rows, members[k[0]][k[1]], weights)
                       for k in wanted})
    tables.update(_cie_tables(rows, members["teacher"], members[plan.cie], plan))
    return Stats(tables)


def _pie_counter(rows: TestRows, teacher: list[MemberRows], students: list[MemberRows],
                 plan: Plan) -> Callable[[np.ndarray | None], metrics.PIECounts]:
    """weights -> FairGRAPE's PIE counts of the population ``students`` against ``teacher`` (modal
    labels, ties keyed by id hash, so per sample; decided once, counted with each weight matrix)."""
    outcomes = metrics.pie_outcomes(rows.y_true, np.stack([m.y_pred for m in teacher]),
                                    np.stack([m.y_pred for m in students]), task=plan.task, seed=plan.seed,
                                    id_hash=rows.id_hash)
    return lambda weights: metrics.pie_counts_from_outcomes(*outcomes, rows.groups, plan.group_names,
                                                            sample_weight=weights)


def _cie_tables(rows: TestRows, teacher: list[MemberRows], students: list[MemberRows], plan: Plan) -> dict:
    """Modal CIEs (ties keyed by id hash, so per sample) and each member's uncertain scores on them."""
    found = metrics.modal_cie(np.stack([m.y_pred for m in teacher]), np.stack([m.y_pred for m in students]),
                              task=plan.task, seed=plan.seed, id_hash=rows.id_hash)

    def inside(members: list[MemberRows]) -> np.ndarray:
        return np.stack([metrics.uncertainty_counts(m.y_score[found.is_cie]).uncertain for m in members])
    return {("cie", "count"): np.asarray(float(found.is_cie.sum())), ("cie", "teacher"): inside(teacher),
            ("cie", "student"): inside(students)}

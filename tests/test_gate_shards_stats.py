"""The gate's per-shard statistics at library level: a shard without test rows, the override
candidates' top-k merge, and the pure per-shard function's picklability."""

from __future__ import annotations

import pickle
from dataclasses import replace
from functools import partial

import numpy as np

from compress_gate.config.gate import parse_gate_config
from compress_gate.data import EvalData
from compress_gate.gate._measures import Layout
from compress_gate.gate._stats import Candidates, PreludePlan, ShardInput, shard_prelude
from compress_gate.gate.evaluate import evaluate_shards
from tests._gate_data import _sigmoid, make_data, student_logits, teacher_logits

CONFIG = parse_gate_config({"n_resamples": 200, "seed": 1,
                            "mitigation": {"calibrate_thresholds": True, "override_budget": 0.05},
                            "limits": [{"metric": "ba", "change": "absolute", "max": 0.03},
                                       {"metric": "ece", "change": "absolute", "max": 0.05}]},
                           source="test")


def _scores():
    data = make_data()
    teacher = teacher_logits(data)
    rows = data.mask("calib", "test")
    return data, _sigmoid(teacher[rows]).astype(np.float32), \
        _sigmoid(student_logits(data, teacher, biased=True)[rows]).astype(np.float32)


def _subset(data: EvalData, rows: np.ndarray) -> EvalData:
    return replace(data, ids=data.ids[rows], labels=data.labels[rows], split=data.split[rows],
                   groups=data.groups[rows])


def _shard(data, teacher, student, rows, name):
    scored = np.flatnonzero(data.mask("calib", "test"))
    at = np.searchsorted(scored, rows[np.isin(rows, scored)])    # score rows of the shard's rows, in its order
    return ShardInput.from_data(_subset(data, rows), teacher[at], [student[at]], name=name)


def _report(shards, data):
    result = evaluate_shards(shards, Layout(data.task, data.attribute_names, data.group_names), CONFIG,
                             n_test=int((data.split == "test").sum()), n_students=1)
    report = result.report.to_json()
    report.pop("created")
    return report, result.overrides


def test_a_shard_without_test_rows_changes_nothing():
    data, teacher, student = _scores()
    everything = np.arange(data.n_samples)
    train = np.flatnonzero(data.split == "train")
    rest = np.flatnonzero(data.split != "train")
    whole = _report([_shard(data, teacher, student, everything, "all")], data)
    split = _report([_shard(data, teacher, student, train, "train only"),
                     _shard(data, teacher, student, rest[::-1], "the rest, reversed")], data)
    assert whole == split
    assert whole[0]["mitigation"]["overrides"]["count"] > 0


def test_override_candidates_merge_to_the_global_top_k_with_ties_by_id():
    # certainty ties at 0.1 between ids b, c, e: the two smallest (certainty, id) are a (0.05), then b
    def candidates(certainty, ids):
        c = np.array(certainty)
        return Candidates(2, (c,), (np.array(ids),), (np.zeros(len(ids), np.int64),))
    one = candidates([0.1, 0.3], ["e", "d"])
    two = candidates([0.1, 0.05], ["c", "a"])
    three = candidates([0.1], ["b"])
    for total in (one + two + three, three + two + one, (two + three) + one):
        assert total.ids[0].tolist() == ["a", "b"] and total.certainty[0].tolist() == [0.05, 0.1]


def test_the_per_shard_functions_are_picklable():
    data, teacher, student = _scores()
    shard = _shard(data, teacher, student, np.arange(data.n_samples), "all")
    job = partial(shard_prelude, plan=PreludePlan("multilabel", 5))
    again = pickle.loads(pickle.dumps(job))
    a, b = job(shard), again(pickle.loads(pickle.dumps(shard)))
    assert a.candidates.ids[0].tolist() == b.candidates.ids[0].tolist()
    np.testing.assert_array_equal(a.teacher.tp, b.teacher.tp)


def test_resample_chunks_change_nothing(monkeypatch):
    data, teacher, student = _scores()
    shards = [_shard(data, teacher, student, np.arange(data.n_samples), "all")]
    whole = _report(shards, data)
    monkeypatch.setattr("compress_gate.gate._stats.CHUNK_BYTES", 4 * 20 * 37)      # runs of 37 test rows
    assert _report(shards, data) == whole


def test_score_rows_concatenate_in_any_order_and_resample_by_id_hash():
    # the rows family of per-group AP: shards concatenated in any order, sorted by id hash at
    # finish, resampled with the Poisson weights of (seed, id hash, resample): the AP of the whole
    from compress_gate import metrics
    from compress_gate._id_hash import hash_ids
    from compress_gate.gate._measures import PopulationMetrics
    from compress_gate.gate._stats import ScoreRows, Stats
    from compress_gate.metrics.poisson_bootstrap import poisson_weights
    rng = np.random.default_rng(1)
    n = 120
    ids = np.array([f"r{i}" for i in range(n)])
    y, groups = rng.integers(0, 2, (n, 2)).astype(np.uint8), rng.random((n, 2)) < 0.5
    scores = rng.random((n, 2)).astype(np.float32)
    h = hash_ids(ids)

    def rows(r: np.ndarray) -> ScoreRows:
        return ScoreRows(h[r], y[r], groups[r], scores[r])
    perm = rng.permutation(n)
    measurer = PopulationMetrics(Layout("multilabel", ("a", "b"), ("male", "young")), Stats({}), train=None, sizes={},
                        seed=3, n_resamples=7)
    one = measurer.group_ap(rows(np.arange(n)), resampled=True)
    shuffled = measurer.group_ap(rows(perm[60:]) + rows(perm[:60]), resampled=True)
    order = np.argsort(h)
    expected = metrics.group_average_precision(y[order], scores[order], groups[order], ("male", "young"),
                                               sample_weight=poisson_weights(h[order], seed=3, n_resamples=7),
                                               overall=False)     # resampled AP numbers are over joint groups
    assert one.ap.shape == (7, 5, 2) and one.names == expected.names and np.isnan(one.ap[:, 0]).all()
    np.testing.assert_array_equal(one.ap, expected.ap)
    np.testing.assert_array_equal(shuffled.ap, expected.ap)


def test_calib_rows_are_gathered_only_for_threshold_calibration():
    data, teacher, student = _scores()
    shard = _shard(data, teacher, student, np.arange(data.n_samples), "all")
    n_calib = int((data.split == "calib").sum())
    gathered = shard_prelude(shard, PreludePlan("multilabel", 0))
    counted = shard_prelude(shard, PreludePlan("multilabel", 0, calib_rows=False))
    assert gathered.calib_labels.shape == (n_calib, data.n_attributes) and gathered.calib_scores[0].shape[0] == n_calib
    empty = (0, data.n_attributes)
    assert counted.calib_labels.shape == empty and counted.calib_scores[0].shape == empty
    assert int(gathered.n_calib) == int(counted.n_calib) == int((counted + counted).n_calib) / 2 == n_calib


def test_joint_group_patterns_are_np_unique_rows():
    from compress_gate.gate._stats import _patterns
    groups = np.random.default_rng(2).random((300, 5)) < [0.5, 0.1, 0.9, 0.3, 0.02]
    assert np.array_equal(_patterns(groups), np.unique(groups, axis=0))
    assert _patterns(groups[:0]).shape == (0, 5) and _patterns(np.zeros((4, 0), dtype=bool)).shape == (0, 0)


def test_statistics_read_the_test_rows_in_cell_order_and_count_the_same_tables():
    # the statistics sort the test rows by cell (no gather of each weight chunk); the point and
    # resampled confusion counts equal those of the rows in file order
    from compress_gate import metrics
    from compress_gate.gate._stats import _test_rows
    from compress_gate.metrics.poisson_bootstrap import hash_ids, poisson_weights
    data, teacher, student = _scores()
    shard = ShardInput.from_data(data, teacher, [student], name="s")
    scores = shard.teacher
    rows = _test_rows(shard)
    assert sorted(rows.tolist()) == np.flatnonzero(shard.split == "test").tolist()
    assert metrics.cell_order(shard.groups[rows]) is None
    test = np.flatnonzero(shard.split == "test")
    pred = metrics.predict_labels(scores, task="multilabel")

    def counts(index):
        w = poisson_weights(hash_ids(shard.ids[index]), seed=1, n_resamples=5)
        return metrics.subgroup_counts(shard.labels[index], pred[index], shard.groups[index], sample_weight=w)
    a, b = counts(test), counts(rows)
    for name in ("size", "positives", "predicted", "tp"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def test_score_bounds_of_paired_rates_do_not_depend_on_the_sharding():
    # one student: FNR, FPR and subgroup-FNR limits take Tango's bounds from the additive paired table;
    # five shards of shuffled rows give the same units, bounds and p-values as one
    config = parse_gate_config({"n_resamples": 200, "seed": 1, "limits": [
        {"metric": "fnr", "change": "absolute", "max": 0.05}, {"metric": "fpr", "max": 0.2},
        {"metric": "accuracy", "change": "absolute", "min": -0.05}]}, source="test")
    data, teacher, student = _scores()
    layout = Layout(data.task, data.attribute_names, data.group_names)
    n_test = int((data.split == "test").sum())

    def limits(shards):
        report = evaluate_shards(shards, layout, config, n_test=n_test, n_students=1).report.to_json()
        return report["limits"]
    whole = limits([_shard(data, teacher, student, np.arange(data.n_samples), "all")])
    order = np.random.default_rng(4).permutation(data.n_samples)
    parts = limits([_shard(data, teacher, student, np.sort(rows), f"part {i}")
                    for i, rows in enumerate(np.array_split(order, 5))])
    assert whole == parts
    assert [u["method"] for u in whole[0]["units"]] == ["tango"] * 3
    assert [u["method"] for u in whole[1]["units"]] == ["wilson"] * 3
    assert whole[2]["units"][0]["method"] == "bootstrap"          # 3 attributes: rows are clustered
    assert all(u["trials"] == u["positives"] for u in whole[0]["units"])


def test_every_unit_n_is_in_the_html_and_the_model_card():
    from compress_gate.report.html import build_html
    from compress_gate.report.model_card import build_model_card
    config = parse_gate_config({"n_resamples": 200, "limits": [{"metric": "fnr", "change": "absolute", "max": 0.05}]},
                               source="test")
    data, teacher, student = _scores()
    result = evaluate_shards([_shard(data, teacher, student, np.arange(data.n_samples), "all")],
                             Layout(data.task, data.attribute_names, data.group_names), config,
                             n_test=int((data.split == "test").sum()), n_students=1)
    unit = result.report.limits[0].units[0]
    html, card = build_html(result.report), build_model_card(result.report)
    assert "Units of fnr absolute change &lt;= 0.05 (upper): n and bounds" in html
    assert f"<td>{unit.name}</td><td>{unit.members:,}</td><td>{unit.positives:,}</td>" in html
    assert f"| {unit.name} | {unit.members:,} | {unit.positives:,} | {unit.trials:,} |" in card

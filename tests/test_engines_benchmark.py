"""Benchmark statistics on fake engines with known timings: no timed assertions anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _engine_fixtures import write_tiny_onnx

from compress_gate.engines import ENGINE_KINDS, Engine, ModelInfo, engine_availability, machine_description
from compress_gate.engines.benchmark import (
    benchmark_models,
    interleaved_order,
    items_per_second,
    latency_summary,
    measure_interleaved,
    paired_speedup,
)
from compress_gate.engines.table import benchmark_failures, benchmark_table
from compress_gate.errors import InputError, RuntimeFailure

INFO = ModelInfo(Path("fake.onnx"), "input", (None, 3, 8, 8), "scores", 0)


class FakeEngine(Engine):
    """Returns scripted times; logs each call as (name, "warmup"|"timed") into a shared list."""

    def __init__(self, name, times, log, *, warmup=0, fail_at=None, kind="onnxruntime", batch_size=1):
        self.kind, self.info, self.batch_size, self.num_threads, self.fixed_batch = kind, INFO, batch_size, 1, False
        self.name, self._times, self._log, self._warmup, self._fail_at = name, list(times), log, warmup, fail_at
        self.calls = 0
        self.closed = False

    def _run(self, batch):
        self.calls += 1
        timed = self.calls > self._warmup
        self._log.append((self.name, "timed" if timed else "warmup"))
        if self._fail_at is not None and self.calls == self._fail_at:
            raise RuntimeFailure(f"{self.name} crashed")
        seconds = self._times[self.calls - self._warmup - 1] if timed else 1.0
        return np.zeros((batch.shape[0], 1), np.float32), seconds

    def close(self):
        self.closed = True


BATCH = np.zeros((1, 3, 8, 8), np.float32)


def test_latency_percentiles_hand_computed():
    # 1..10 ms; linear interpolation at rank q/100 * (n - 1): p50 -> 5.5, p90 -> 9.1, p99 -> 9.91
    summary = latency_summary(np.arange(1, 11) / 1e3)
    assert summary == pytest.approx({"p50_ms": 5.5, "p90_ms": 9.1, "p99_ms": 9.91, "mean_ms": 5.5})


def test_items_per_second_uses_the_median():
    assert items_per_second(32, [0.1, 0.2, 0.4]) == pytest.approx(160.0)  # 32 / 0.2


def test_paired_speedup_hand_computed():
    # ratios 2/1, 4/1, 6/3 = [2, 4, 2]: median 2, q25 2, q75 3; median(ref) / median(cand) = 4 / 1
    speedup = paired_speedup([2, 4, 6], [1, 1, 3])
    assert speedup == pytest.approx({"ratio": 2.0, "q25": 2.0, "q75": 3.0, "ratio_of_medians": 4.0, "pairs": 3})


def test_pairing_cancels_a_drift_that_unpaired_times_show():
    # The machine slows down 3x during the run; the student is always exactly 2x faster.
    teacher, student = [10, 20, 30, 10], [5, 10, 15, 5]
    speedup = paired_speedup(teacher, student)
    assert speedup["ratio"] == speedup["q25"] == speedup["q75"] == 2.0


@pytest.mark.parametrize("reference, candidate, match", [
    ([1, 2], [1], "equal lengths"), ([1, 0], [1, 1], "times > 0"), ([], [], "non-empty"),
    ([1, float("nan")], [1, 1], "finite"),
])
def test_paired_speedup_refuses_bad_times(reference, candidate, match):
    with pytest.raises(InputError, match=match):
        paired_speedup(reference, candidate)


def test_interleaved_order_rotates_so_no_unit_always_goes_first():
    assert interleaved_order(3, 4) == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]
    assert interleaved_order(2, 4) == [[0, 1], [1, 0], [0, 1], [1, 0]]
    assert interleaved_order(0, 3) == []


def test_measure_interleaved_order_and_times():
    log = []
    teacher = FakeEngine("T", [0.04, 0.05, 0.06], log, warmup=2)
    student = FakeEngine("S", [0.01, 0.02, 0.03], log, warmup=2)
    times = measure_interleaved([teacher, student], [BATCH, BATCH], warmup=2, iterations=3)
    assert log == [("T", "warmup"), ("T", "warmup"), ("S", "warmup"), ("S", "warmup"),
                   ("T", "timed"), ("S", "timed"), ("S", "timed"), ("T", "timed"), ("T", "timed"), ("S", "timed")]
    np.testing.assert_array_equal(times, [[0.04, 0.01], [0.05, 0.02], [0.06, 0.03]])


def test_measure_interleaved_drops_a_failing_engine_and_goes_on():
    log, failures = [], []
    good = FakeEngine("G", [0.1, 0.2, 0.3], log)
    bad = FakeEngine("B", [0.1, 0.2, 0.3], log, fail_at=2)
    times = measure_interleaved([good, bad], [BATCH, BATCH], warmup=0, iterations=3,
                                on_failure=lambda i, err: failures.append((i, str(err))))
    assert failures == [(1, "B crashed")]
    np.testing.assert_array_equal(times[:, 0], [0.1, 0.2, 0.3])
    assert times[0, 1] == 0.1 and np.isnan(times[1:, 1]).all()
    with pytest.raises(RuntimeFailure, match="B crashed"):
        measure_interleaved([FakeEngine("B", [0.1], [], fail_at=1)], [BATCH], warmup=0, iterations=1)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    return {"teacher": write_tiny_onnx(folder / "teacher.onnx"), "student": write_tiny_onnx(folder / "student.onnx")}


def _scripted_opener(times_by_model, opened, *, fail_model=None):
    paths = {}

    def opener(kind, path, *, batch_size, num_threads=None):
        name = Path(path).stem
        if name == fail_model:
            raise RuntimeFailure(f"{name} could not be compiled")
        engine = FakeEngine(name, times_by_model[name], [], warmup=1, kind=kind, batch_size=batch_size)
        opened.append(engine)
        paths[name] = path
        return engine

    return opener


def test_benchmark_models_report_from_known_timings(two_models):
    opened = []
    times = {"teacher": [0.010, 0.020, 0.030, 0.010], "student": [0.005, 0.010, 0.015, 0.005]}
    kinds = ["onnxruntime", "onnxruntime-cuda"]
    result = benchmark_models(two_models, kinds, batch_sizes=(1, 4), warmup=1, iterations=4, settle_s=0,
                              open_engine=_scripted_opener(times, opened))
    json.dumps(result, allow_nan=False)  # JSON-able, no NaN
    assert all(engine.closed for engine in opened)
    assert result["settings"]["reference"] == "teacher" and result["settings"]["input_shape"] == [3, 8, 8]
    ok = [row for row in result["results"] if row["status"] == "ok"]
    assert {(row["model"], row["engine"], row["batch_size"]) for row in ok} >= {
        ("teacher", "onnxruntime", 1), ("student", "onnxruntime", 4)}
    student4 = next(r for r in ok if (r["model"], r["engine"], r["batch_size"]) == ("student", "onnxruntime", 4))
    assert student4["times_ms"] == [5.0, 10.0, 15.0, 5.0]
    # median of [5, 10, 15, 5] ms = 7.5 ms; p90 at rank 2.7 of sorted [5, 5, 10, 15] = 10 + 0.7 * 5 = 13.5
    assert student4["latency_ms"]["p50_ms"] == pytest.approx(7.5)
    assert student4["latency_ms"]["p90_ms"] == pytest.approx(13.5)
    assert student4["items_per_s"] == pytest.approx(4 / 0.0075)
    speedup = next(s for s in result["speedups"] if (s["engine"], s["batch_size"]) == ("onnxruntime", 4))
    assert speedup["model"] == "student" and speedup["ratio"] == pytest.approx(2.0)
    cuda_rows = [row for row in result["results"] if row["engine"] == "onnxruntime-cuda"]
    reason = engine_availability()["onnxruntime-cuda"]
    assert all((row["status"] == "skipped") == bool(reason) for row in cuda_rows)
    if reason:
        assert all(row["reason"] == reason for row in cuda_rows)
        assert benchmark_failures(result) == []
        assert "onnxruntime-cuda was requested" in benchmark_failures(result, ["onnxruntime-cuda"])[0]


def test_benchmark_models_keeps_going_when_one_engine_fails(two_models):
    times = {"teacher": [0.01, 0.01], "student": [0.01, 0.01]}
    result = benchmark_models(two_models, ["onnxruntime"], batch_sizes=(1,), warmup=1, iterations=2,
                              open_engine=_scripted_opener(times, [], fail_model="student"))
    rows = {row["model"]: row for row in result["results"]}
    assert rows["teacher"]["status"] == "ok"
    assert rows["student"]["status"] == "failed" and "could not be compiled" in rows["student"]["reason"]
    assert result["speedups"] == []
    assert benchmark_failures(result) == [
        "student on onnxruntime at batch 1: student could not be compiled"]
    benchmark_table(result)  # renders failures without raising


def test_benchmark_models_input_errors(two_models, tmp_path):
    with pytest.raises(InputError, match="no models"):
        benchmark_models({}, ["onnxruntime"])
    with pytest.raises(InputError, match="unknown engine"):
        benchmark_models(two_models, ["tpu"])
    with pytest.raises(InputError, match="reference model 'dense'"):
        benchmark_models(two_models, ["onnxruntime"], reference="dense")
    with pytest.raises(InputError, match="no such ONNX model"):
        benchmark_models({"x": tmp_path / "missing.onnx"}, ["onnxruntime"])
    with pytest.raises(InputError, match="batch sizes"):
        benchmark_models(two_models, ["onnxruntime"], batch_sizes=(0,))


def test_benchmark_on_real_onnxruntime_measures_both_models(two_models):
    result = benchmark_models(two_models, ["onnxruntime"], batch_sizes=(2,), warmup=1, iterations=3)
    assert [row["status"] for row in result["results"]] == ["ok", "ok"]
    assert all(len(row["times_ms"]) == 3 and row["items_per_s"] > 0 for row in result["results"])
    assert result["speedups"][0]["pairs"] == 3


def test_machine_description_records_threads_and_flags():
    description = machine_description(num_threads=2)
    assert description["threads_used"] == 2
    assert set(description["flags"]) == {"avx2", "avx512", "vnni", "amx"}
    assert all(isinstance(flag, bool) for flag in description["flags"].values())
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        assert description["flags"]["avx2"] == (" avx2" in handle.read())
    assert description["versions"]["onnxruntime"] is not None
    assert set(ENGINE_KINDS) >= {"onnxruntime", "deepsparse"}


def test_each_engine_runs_its_own_artefact(two_models):
    opened = []
    times = {"teacher": [0.02, 0.02], "student": [0.01, 0.01]}
    models = {"teacher": two_models["teacher"], "student": {"onnxruntime": two_models["student"]}}
    result = benchmark_models(models, ["onnxruntime", "deepsparse"], batch_sizes=(1,), warmup=0, iterations=2,
                              open_engine=_scripted_opener(times, opened))
    rows = {(row["model"], row["engine"]): row for row in result["results"]}
    assert rows[("student", "onnxruntime")]["status"] == "ok"
    if engine_availability()["deepsparse"] is None:
        assert rows[("teacher", "deepsparse")]["status"] == "ok"
        assert rows[("student", "deepsparse")]["status"] == "skipped"
        assert rows[("student", "deepsparse")]["reason"] == "no deepsparse artefact for student"
    assert result["models"]["student"] == {"onnxruntime": str(two_models["student"])}
    with pytest.raises(InputError, match="unknown engines"):
        benchmark_models({"x": {"tpu": two_models["student"]}}, ["onnxruntime"])


def test_instruction_set_keeps_the_kernel_deciding_flags_of_cpuinfo(monkeypatch):
    import compress_gate.engines.machine as machine

    # an AVX-512 VNNI CPU's flags among others: only the instruction-set ones are kept, sorted
    flags = frozenset({"fpu", "avx2", "avx512f", "avx512_vnni", "fma", "ht", "sse4_2"})
    monkeypatch.setattr(machine, "_cpuinfo", lambda: ("Test CPU", flags))
    found = machine.instruction_set()
    assert found["cpuinfo"] == ["avx2", "avx512_vnni", "avx512f", "fma", "sse4_2"]
    assert found["numpy"] == sorted(found["numpy"])                # numpy's own detection, where it exposes it
    monkeypatch.setattr(machine, "_cpuinfo", lambda: (None, frozenset()))
    assert machine.instruction_set()["cpuinfo"] == []              # no /proc/cpuinfo
    assert machine.run_machine()["instruction_set"]["cpuinfo"] == []

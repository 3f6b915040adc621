"""``compress-gate gate``: load, judge (:mod:`compress_gate.gate`), then write the gate's files.

The files are report.json, junit.xml, thresholds.json, overrides.json, report.html and
MODEL_CARD.md: the gate builds the typed report, the renderers of :mod:`compress_gate.report`
read it, and this module, above both, calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from compress_gate._atomic import write_json
from compress_gate._outdir import Inputs, output_directory
from compress_gate.config.gate import GateConfig, load_gate_config
from compress_gate.data.contract import (EvalData, align_scores, load_eval_data, load_predictions,
                                         save_predictions)
from compress_gate.errors import InputError
from compress_gate.execution import Execution, check_execution
from compress_gate.gate import GateResult, evaluate, judge_shards
from compress_gate.mitigation import write_overrides, write_thresholds
from compress_gate.report import render_html, write_junit, write_model_card
from compress_gate.report.schema import Report

__all__ = ["write_gate_outputs", "gate_inputs", "run_gate", "summary_lines"]


def _write_files(result: GateResult, tmp: Path, out: Path) -> dict[str, Path]:
    """Write the gate's files into the temporary directory ``tmp``; return name -> final path in ``out``."""
    report = result.report
    task, names = report.inputs.task, report.inputs.attribute_names
    thresholds = result.thresholds
    if thresholds is None and task == "multilabel":
        thresholds = np.full(len(names), 0.5)
    written = [write_json(tmp / "report.json", report.to_json()), write_junit(report, tmp / "junit.xml"),
               write_thresholds(tmp / "thresholds.json", thresholds, task=task, attribute_names=names),
               write_overrides(tmp / "overrides.json", result.overrides, task=task, attribute_names=names),
               render_html(report, tmp / "report.html"), write_model_card(report, tmp / "MODEL_CARD.md")]
    return {Path(p).name: out / Path(p).name for p in written}


def write_gate_outputs(result: GateResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the gate's files as one new directory ``out_dir``; return name -> path.

    The files are built in a temporary directory renamed onto ``out_dir``
    (:func:`compress_gate._outdir.output_directory`: only a directory compress-gate
    made, or an empty one, is replaced; a failed write leaves no partial set).
    ``thresholds.json`` holds the calibrated thresholds, 0.5 per attribute when
    calibration is off (multi-label), or null (multi-class: argmax).
    ``report.html`` and ``MODEL_CARD.md`` come from :mod:`compress_gate.report`.
    """
    with output_directory(out_dir, what="gate output directory") as tmp:
        return _write_files(result, tmp, Path(out_dir))


def _model_scores(data: EvalData, rows: np.ndarray, model: Path, batch_size: int,
                  say: Callable[[str], None]) -> np.ndarray:
    from compress_gate.engines import score_model
    if data.inputs is None:
        raise InputError(f"{model}: scoring a model needs the preprocessed inputs, and the eval data has no "
                         "`inputs` column. Add `inputs` (N, C, H, W) float32 to data.npz, or pass "
                         "prediction files with --teacher/--student instead.")
    from compress_gate.data.image_files import ImageFiles, scan_images

    if isinstance(data.inputs, ImageFiles):      # a bad file is named before any model runs
        scan_images(data.inputs[rows], data.ids[rows], skip=False)
    say(f"scoring {model.name} on onnxruntime")
    return score_model(model, data.inputs[rows], engine="onnxruntime", batch_size=batch_size).scores


def gate_inputs(*, data: str | Path, limits: str | Path | None = None, teacher: str | Path | None = None,
                students: Sequence[str | Path] = (), teacher_model: str | Path | None = None,
                student_models: Sequence[str | Path] = ()) -> Inputs:
    """What the gate reads, by option, for :func:`compress_gate._outdir.check_apart` (no output may
    overlap one)."""
    return {"eval data (--data)": data, "teacher predictions (--teacher)": teacher,
            "student predictions (--student)": students, "teacher model (--teacher-model)": teacher_model,
            "student model (--student-model)": student_models, "limits file (--limits)": limits}


def run_gate(*, data: str | Path, out: str | Path, limits: str | Path | None = None,
             teacher: str | Path | None = None, students: Sequence[str | Path] = (),
             teacher_model: str | Path | None = None, student_models: Sequence[str | Path] = (),
             extra_columns: Sequence[str] = (), batch_size: int = 64, execution: Execution = "local",
             address: str | None = None, say: Callable[[str], None] = lambda _: None
             ) -> tuple[GateResult, dict[str, Path]]:
    """Load everything, judge, write the outputs into ``out``; return the result and the paths.

    The teacher and students come either as prediction files (``teacher``,
    ``students``) or as ONNX models (``teacher_model``, ``student_models``) scored with
    ONNX Runtime on the eval data's ``inputs``; model scores are also saved as
    ``out/predictions/<name>.npz``. Without ``limits`` the gate reports and passes.
    ``extra_columns`` names columns of the data and prediction files that the gate
    should leave unread; any other column it does not know is an input error.
    ``out`` is checked before anything is read and built as one new directory
    (:mod:`compress_gate._outdir`): a call that fails leaves no earlier report there; an
    ``out`` that is, holds or lies inside one of the inputs is refused, and so is a second
    call writing the same ``out`` while this one runs.
    ``data`` a directory: the eval data and the predictions (``teacher``, ``students``)
    are directories of shards, streamed shard by shard (:func:`compress_gate.gate._sharded.judge_shards`),
    in this process or, with ``execution="ray"``, as Ray tasks on the cluster at ``address``.

    Raises
    ------
    InputError
        Anything wrong with the files or the combination of arguments.
    """
    inputs = gate_inputs(data=data, limits=limits, teacher=teacher, students=students,
                         teacher_model=teacher_model, student_models=student_models)
    with output_directory(out, what="output directory", inputs=inputs) as tmp:
        result, files = _judge(data=data, out=Path(out), tmp=tmp, limits=limits, teacher=teacher,
                               students=students, teacher_model=teacher_model, student_models=student_models,
                               extra_columns=extra_columns, batch_size=batch_size, execution=execution,
                               address=address, say=say)
    return result, files


def _judge(*, data: str | Path, out: Path, tmp: Path, limits: str | Path | None, teacher: str | Path | None,
           students: Sequence[str | Path], teacher_model: str | Path | None,
           student_models: Sequence[str | Path], extra_columns: Sequence[str], batch_size: int, execution: str,
           address: str | None, say: Callable[[str], None]) -> tuple[GateResult, dict[str, Path]]:
    """``run_gate``'s work, writing into the temporary directory ``tmp`` that becomes ``out``."""
    have_files, have_models = teacher is not None or bool(students), teacher_model is not None or bool(student_models)
    if have_files == have_models or (have_files and (teacher is None or not students)) or (
            have_models and (teacher_model is None or not student_models)):
        raise InputError("give the teacher and at least one student either as prediction files "
                         "(--teacher T.npz --student S.npz) or as ONNX models (--teacher-model T.onnx "
                         "--student-model S.onnx), not a mix.")
    config = load_gate_config(limits) if limits is not None else GateConfig()
    if execution == "ray" and not Path(data).is_dir():
        raise InputError(f"--execution {execution} runs the gate on a directory of shards; {data} is one file. "
                         "Drop --execution, or write the data and predictions as shard directories.")
    execution = check_execution(execution, what="the gate's per-shard statistics", address=address)
    if Path(data).is_dir():
        if not have_files:
            raise InputError(f"{data} is a directory of shards: give the predictions as shard directories "
                             "too (--teacher DIR --student DIR); scoring ONNX models needs one data.npz.")
        say(f"streaming the shards of {data} ({config.n_resamples} bootstrap resamples)")
        result = judge_shards(data, teacher, students, config, extra_columns=extra_columns,  # type: ignore[arg-type]
                              execution=execution, address=address)
        return result, _write_files(result, tmp, out)
    say(f"loading {data}")
    eval_data = load_eval_data(data, extra_columns=extra_columns)
    rows = eval_data.mask("calib", "test")
    if have_files:
        say("loading predictions")
        teacher_scores = align_scores(eval_data, load_predictions(teacher, extra_columns=extra_columns), rows)  # type: ignore[arg-type]
        student_scores = [align_scores(eval_data, load_predictions(s, extra_columns=extra_columns), rows)
                          for s in students]
        inputs = {"data": str(data), "teacher": [str(teacher)], "students": [str(s) for s in students]}
    else:
        models = [Path(teacher_model)] + [Path(s) for s in student_models]  # type: ignore[arg-type]
        scores = [_model_scores(eval_data, rows, m, batch_size, say) for m in models]
        saved = []
        for i, (model, model_scores) in enumerate(zip(models, scores)):
            name = "teacher" if i == 0 else f"student_{i}"
            save_predictions(tmp / "predictions" / f"{name}.npz", eval_data.ids[rows], model_scores)
            saved.append(str(out / "predictions" / f"{name}.npz"))
        teacher_scores, student_scores = scores[0], scores[1:]
        inputs = {"data": str(data), "teacher": [str(models[0])], "students": [str(m) for m in models[1:]],
                  "predictions": saved}
    say(f"judging ({config.n_resamples} bootstrap resamples)")
    result = evaluate(eval_data, teacher_scores, student_scores, config, inputs=inputs)
    return result, _write_files(result, tmp, out)


def summary_lines(report: Report, paths: dict[str, Path]) -> list[str]:
    """Plain-text lines for the terminal: the verdict and outcome, its scope, each limit with its
    outcome and reason, the files."""
    verdict = {"pass": "PASSED", "fail": "REFUSED", "not_enough_evidence": "REFUSED (not enough evidence)"}
    lines = [f"gate {verdict[report.outcome]}: {sum(1 for e in report.limits if e.passed)} of "
             f"{len(report.limits)} limits hold (judged: {report.judged} predictions)."]
    if report.no_limits:
        lines = [f"gate {verdict[report.outcome]}: {report.note}"]
    lines.append(f"  {report.scope}")
    status = {"pass": "ok  ", "fail": "FAIL", "not_enough_evidence": "UNDECIDED"}
    for entry in report.limits:
        lines.append(f"  {status[entry.outcome]} {entry.name}: {entry.reason}")
    lines += [f"  wrote {path}" for path in paths.values()]
    return lines

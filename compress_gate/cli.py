"""The ``compress-gate`` command line: thin Typer commands over the library.

Each command parses its arguments, calls one library function and renders the
result. Heavy modules (torch, onnx, onnxruntime, sparseml, deepsparse) are imported
inside the commands, so ``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape  # messages name extras like `compress-gate[sparseml]`

from compress_gate import __version__
from compress_gate.errors import EXIT_INPUT_ERROR, EXIT_RUNTIME_FAILURE, InputError, RuntimeFailure

app = typer.Typer(
    name="compress-gate",
    help="Compress a vision model, benchmark it, and refuse release when compression amplified bias.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
out_console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def exit_codes() -> Iterator[None]:
    """Map :class:`InputError` to exit 2 (message only); runtime failures and bugs to exit 3.

    An interrupt exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM), never 1,
    which CI reads as "refused".
    """
    try:
        yield
    except InputError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    except RuntimeFailure as err:
        err_console.print(f"[bold red]runtime failure:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_RUNTIME_FAILURE) from None
    except KeyboardInterrupt as err:  # SIGINT, or SIGTERM where a command turns it into an exception
        from compress_gate._signals import signal_of

        signum = signal_of(err)
        err_console.print(f"[bold red]interrupted:[/] interrupted by {signal.Signals(signum).name}; nothing of "
                          "this call passes for a result (see run.json for a run).", highlight=False, soft_wrap=True)
        raise typer.Exit(128 + signum) from None
    except MemoryError as err:
        err_console.print(f"[bold red]runtime failure:[/] out of memory ({escape(str(err)) or 'no detail'}). "
                          f"Completed stages are kept on disk. {_memory_advice(str(err))}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(EXIT_RUNTIME_FAILURE) from None
    except Exception:
        # A bug, not a verdict: never let it exit 1, which CI reads as "refused".
        err_console.print_exception(show_locals=False, max_frames=8)
        err_console.print("[bold red]runtime failure:[/] unexpected internal error (above). Please "
                          "report it with the command line you ran.", highlight=False)
        raise typer.Exit(EXIT_RUNTIME_FAILURE) from None


def _memory_advice(message: str) -> str:
    """What to change after a ``MemoryError``, read from NumPy's message (it names the array's dtype)."""
    if "data type <U" in message or "data type |S" in message or "data type <S" in message:
        from compress_gate._id_hash import MAX_ID_LENGTH

        return ("The array was text: a string column (ids, most likely) is too wide, since NumPy stores every "
                f"value at the width of the longest. Shorten the long values (ids may have at most {MAX_ID_LENGTH} "
                "characters; docs/data.md) and rerun.")
    return ("Free memory or use a machine with more; or make the work smaller: shard the eval data and "
            "predictions (docs/scaling.md), lower the scoring batch size, or lower n_resamples (the "
            "bootstrap's memory grows with it).")


def _version_callback(value: bool) -> None:
    if value:
        out_console.print(f"compress-gate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Optional[bool] = typer.Option(  # noqa: UP007 (typer needs Optional)
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """compress-gate: ship compressed vision models without shipping new bias."""


def _mlflow_uri_option() -> Any:
    return typer.Option(None, "--mlflow-uri", help="Log to this MLflow tracking server (needs the [mlflow] "
                        "extra); overrides the recipe's tracking.mlflow_uri. Unreachable: exit 3, files kept.")


def _mlflow_experiment_option() -> Any:
    return typer.Option(None, "--mlflow-experiment", help="MLflow experiment name (default: the recipe's "
                        "tracking.experiment, else compress-gate).")


def _recipe_tracking(recipe: Path, uri: str | None, experiment: str | None) -> Any:
    """The MLflow tracking a run or sweep asks for (flags over the recipe's ``tracking:``), or None."""
    from compress_gate.config.run import load_run_config
    from compress_gate.tracking import resolve_tracking

    return resolve_tracking(load_run_config(recipe).tracking, uri, experiment)


# --- run ---------------------------------------------------------------------------
@app.command()
def run(recipe: Path = typer.Argument(..., help="The run recipe (YAML)."),
        mlflow_uri: Optional[str] = _mlflow_uri_option(),  # noqa: UP007
        mlflow_experiment: Optional[str] = _mlflow_experiment_option(),  # noqa: UP007
        resume: bool = typer.Option(False, "--resume", help="Continue the interrupted or failed run of RECIPE "
                                    "in its run directory from the last finished training epoch."),
        ) -> None:
    """Compress, export, benchmark and gate the model that RECIPE describes.

    Exit 0: released (RUN/release/); 1: refused (RUN/refused/); 2: bad recipe or data;
    3: a stage failed at run time (completed stages kept, see RUN/run.json), or the MLflow
    server asked for could not be reached (the run's files are written).
    """
    from compress_gate.pipeline import run_recipe

    with exit_codes():
        tracking = _recipe_tracking(recipe, mlflow_uri, mlflow_experiment)
        outcome = run_recipe(recipe, console=out_console, resume=resume)
        if tracking is not None:
            from compress_gate.tracking import log_run
            log_run(tracking, outcome.report, outcome.run_dir, outcome.bundle_dir)
    raise typer.Exit(0 if outcome.passed else 1)


def _execution_option(help_text: str) -> Any:
    """``--execution local|ray`` (old name ``--backend``, still accepted); the library checks the value
    once (:func:`compress_gate.execution.check_execution`)."""
    return typer.Option("local", "--execution", "--backend", help=f"Where the work runs: {help_text} "
                        "(--backend is the old name.)")


def _address_option() -> Any:
    return typer.Option(None, "--address", help="Ray cluster address (execution ray).")


# --- gate --------------------------------------------------------------------------
@app.command()
def gate(
    data: Path = typer.Option(..., "--data", help="Eval data (data.npz: ids, labels, split, group__*), or a "
                              "directory of shards (then --teacher/--student are shard directories too)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Teacher predictions (npz: ids, scores)."),  # noqa: UP007
    student: Optional[list[Path]] = typer.Option(  # noqa: UP007
        None, "--student", help="Student predictions; repeat for a population (the first ships)."),
    execution: str = _execution_option("Shard directories: local (stream them in this process) or ray (Ray "
                                       "tasks that read the shards themselves)."),
    address: Optional[str] = _address_option(),  # noqa: UP007
    teacher_model: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--teacher-model", help="Teacher ONNX model, scored with ONNX Runtime on the data's inputs."),
    student_model: Optional[list[Path]] = typer.Option(  # noqa: UP007
        None, "--student-model", help="Student ONNX model(s), scored like --teacher-model."),
    limits: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--limits", help="Limits YAML (or a recipe with a gate: section); none: report only."),
    out: Path = typer.Option(..., "--out", help="Directory for report.json, junit.xml, thresholds, overrides."),
    allow_column: Optional[list[str]] = typer.Option(  # noqa: UP007
        None, "--allow-column", help="An extra column of the data or prediction files to leave unread "
        "(repeatable); any other unknown column is an error."),
    as_json: bool = typer.Option(False, "--json", help="Print report.json to stdout."),
    summary_md: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--summary-md", help="Also write the Markdown job summary here (one row per limit: outcome, "
        "observed, interval, n needed), e.g. for $GITHUB_STEP_SUMMARY or a merge-request comment."),
    mlflow_uri: Optional[str] = _mlflow_uri_option(),  # noqa: UP007
    mlflow_experiment: Optional[str] = _mlflow_experiment_option(),  # noqa: UP007
) -> None:
    """Judge teacher and student predictions against limits; exit 0 pass, 1 refused, 2 bad input."""
    import json

    from compress_gate._outdir import output_file
    from compress_gate.pipeline.gate import gate_inputs, run_gate, summary_lines
    from compress_gate.report import write_summary_md

    from compress_gate.tracking import resolve_tracking

    inputs = {**gate_inputs(data=data, limits=limits, teacher=teacher, students=student or [],
                            teacher_model=teacher_model, student_models=student_model or []),
              "gate output directory (--out)": out}
    with exit_codes(), err_console.status("gate") as status, (  # --summary-md is checked before the work
            output_file(summary_md, what="job summary (--summary-md)", example="summary.md", inputs=inputs)
            if summary_md is not None else contextlib.nullcontext()) as summary_tmp:
        tracking = resolve_tracking(None, mlflow_uri, mlflow_experiment)
        result, paths = run_gate(data=data, out=out, limits=limits, teacher=teacher, students=student or [],
                                 teacher_model=teacher_model, student_models=student_model or [],
                                 extra_columns=allow_column or [], execution=execution, address=address,
                                 say=status.update)
        if summary_tmp is not None:
            write_summary_md(result.report, summary_tmp)
            paths = {**paths, "summary": summary_md}
    if as_json:
        typer.echo(json.dumps(result.report.to_json(), indent=2))
    else:
        for line in summary_lines(result.report, paths):
            out_console.print(line, highlight=False, markup=False, soft_wrap=True)
    if tracking is not None:
        from compress_gate.tracking import log_gate
        with exit_codes():
            run_id = log_gate(tracking, result.report, out, extra_files=[summary_md] if summary_md else [])
        err_console.print(f"logged to MLflow at {tracking.uri}: run {run_id}", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.passed else 1)


# --- report ------------------------------------------------------------------------
@app.command("report")
def report_command(
    report_json: Path = typer.Argument(..., help="A report.json written by `compress-gate gate` or `run`."),
    out: Path = typer.Option(..., "--out", help="New directory for report.json, report.html, MODEL_CARD.md, "
                             "junit.xml and summary.md."),
) -> None:
    """Re-render the report files from a saved REPORT_JSON (checked against the published schema first).

    Exit 0: rendered; 2: not a report.json of this schema version, edited, or a bad --out.
    """
    from compress_gate.report.rerender import rerender

    with exit_codes():
        report, paths = rerender(report_json, out)
    out_console.print(f"report of a gate {report.verdict.upper()} ({report.outcome}) re-rendered:", highlight=False)
    for path in paths.values():
        out_console.print(f"  wrote {path}", highlight=False, markup=False, soft_wrap=True)


# --- bench -------------------------------------------------------------------------
@app.command()
def bench(
    models: list[Path] = typer.Argument(..., help="ONNX models; the first is the reference (teacher)."),
    engine: Optional[list[str]] = typer.Option(  # noqa: UP007
        None, "--engine", "-e", help="onnxruntime, deepsparse, openvino, onnxruntime-cuda, onnxruntime-tensorrt "
        "(repeatable; default: all, unavailable ones skipped with the reason)."),
    batch_size: Optional[list[int]] = typer.Option(  # noqa: UP007
        None, "--batch-size", "-b", help="Repeatable; default 1 and 32."),
    iterations: int = typer.Option(20, help="Timed runs per model, engine and batch size (interleaved)."),
    warmup: int = typer.Option(3, help="Untimed runs first."),
    threads: Optional[int] = typer.Option(None, help="Threads per engine; default: all usable CPUs."),  # noqa: UP007
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the results JSON here."),  # noqa: UP007
) -> None:
    """Benchmark ONNX models on DeepSparse and ONNX Runtime (CPU, and GPU when present)."""
    import json

    from rich.markup import escape

    from compress_gate._atomic import write_json
    from compress_gate._outdir import output_file
    from compress_gate.engines.benchmark import benchmark_models
    from compress_gate.engines.table import benchmark_failures, benchmark_table

    names = [p.stem if [m.stem for m in models].count(p.stem) == 1 else str(p) for p in models]
    with exit_codes(), err_console.status("benchmarking") as status, (  # --out is checked before the work
            output_file(out, what="results file (--out)", inputs={"model": models})
            if out is not None else contextlib.nullcontext()) as tmp:
        result = benchmark_models(dict(zip(names, models)), engine, batch_sizes=tuple(batch_size or (1, 32)),
                                  iterations=iterations, warmup=warmup, num_threads=threads, progress=status.update)
        if tmp is not None:
            write_json(tmp, result)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:  # at least 110 columns, so a log or a narrow terminal keeps every column
        out_console.print(benchmark_table(result), width=max(out_console.width, 110), crop=False)
    problems = benchmark_failures(result, engine)
    for problem in problems:
        err_console.print(f"[bold red]engine failure:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_RUNTIME_FAILURE if problems else 0)


# --- predict -----------------------------------------------------------------------
@app.command()
def predict(
    bundle: Path = typer.Argument(..., help="A release bundle directory (RUN/release)."),
    inputs: Path = typer.Argument(..., help="An .npz with `inputs` (N, C, H, W) float32 and optional `ids`."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output .npz (default: INPUTS.preds.npz)."),  # noqa: UP007
    engine: str = typer.Option("onnxruntime", "--engine", help="onnxruntime (default) or deepsparse."),
) -> None:
    """Run a release bundle (thresholds and overrides applied) on inputs; a tampered bundle exits 2."""
    from compress_gate.bundle import predict_npz

    with exit_codes():
        prediction, written = predict_npz(bundle, inputs, out, engine=engine)
    out_console.print(f"{len(prediction.ids)} predictions ({int(prediction.overridden.sum())} overridden) "
                      f"-> {written}", highlight=False)


# --- init --------------------------------------------------------------------------
@app.command()
def init(
    path: Path = typer.Argument(Path("recipe.yaml"), help="Where to write the recipe."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter recipe (it runs the embedded demo as written)."""
    from compress_gate.config.starter import write_starter_recipe

    with exit_codes():
        written = write_starter_recipe(path, force=force)
    out_console.print(f"wrote {written}; run it with `compress-gate run {written}`", highlight=False)


# --- audit -------------------------------------------------------------------------
@app.command()
def audit(recipe: Path = typer.Argument(..., help="The run recipe (YAML); its `audit:` section sets the "
                                        "population size, top-k and splits."),
          execution: str = _execution_option("local (one model after another) or ray (one Ray task per model "
                                             "pair)."),
          address: Optional[str] = _address_option(),  # noqa: UP007
          ) -> None:
    """Find compression-identified exemplars (CIEs) for human review."""
    from compress_gate.audit import run_audit, summary_lines
    from compress_gate.config.run import load_run_config

    with exit_codes(), err_console.status("auditing") as status:
        config = load_run_config(recipe)
        result = run_audit(config, config.audit, say=status.update, execution=execution, address=address,
                           recipe=recipe)
    for line in summary_lines(result):
        out_console.print(line, highlight=False, markup=False, soft_wrap=True)


# --- score -------------------------------------------------------------------------
@app.command()
def score(
    model: Path = typer.Argument(..., help="The ONNX model to score."),
    data: Path = typer.Argument(..., help="data.npz, or a directory of eval-data shards, with `inputs` (or a "
                                "data.npz of image files, as `run` writes: streamed)."),
    out: Path = typer.Option(..., "--out", help="New directory for the prediction shards and manifest.json."),
    engine: str = typer.Option("onnxruntime", "--engine", help="Engine kind that runs the model."),
    batch_size: int = typer.Option(64, "--batch-size", help="Rows per engine batch."),
    rows_per_shard: int = typer.Option(100_000, "--rows-per-shard", help="Most rows in one output shard."),
    execution: str = _execution_option("local (this process) or ray (an actor pool)."),
    address: Optional[str] = _address_option(),  # noqa: UP007
    workers: int = typer.Option(2, "--workers", help="Scoring actors (execution ray)."),
) -> None:
    """Score the calib and test rows of DATA with MODEL into sharded predictions in --out."""
    from compress_gate.pipeline.score import score_to_shards

    with exit_codes():
        written = score_to_shards(model, data, out, engine=engine, batch_size=batch_size,
                                  rows_per_shard=rows_per_shard, execution=execution, address=address,
                                  workers=workers)
    out_console.print(f"{written.n_rows} rows in {written.n_shards} shard(s) -> {written.out} "
                      f"({written.manifest.name})", highlight=False)


# --- sweep -------------------------------------------------------------------------
@app.command(context_settings={"allow_extra_args": True})
def sweep(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="The run recipe (YAML); its SparseML recipe defines `final_sparsity`."),
    sparsity: list[float] = typer.Option([], "--sparsity", "-s", help="Sparsities to try: `--sparsity 0.5 0.8 0.9`."),
    mask: list[str] = typer.Option([], "--mask", "-m", help="Torch-backend recipes: N:M masks, `--mask 2:4 1:4 1:8`."),
    release: bool = typer.Option(False, "--release", help="Copy the chosen student's bundle to SWEEP/release."),
    execution: str = _execution_option("local (one student after another) or ray (one Ray task per student, "
                                       "the teacher first)."),
    address: Optional[str] = _address_option(),  # noqa: UP007
    mlflow_uri: Optional[str] = _mlflow_uri_option(),  # noqa: UP007
    mlflow_experiment: Optional[str] = _mlflow_experiment_option(),  # noqa: UP007
    seeds: int = typer.Option(1, "--seeds", help="Students per setting (seeds s .. s+N-1); sweep.json and "
                              "sweep.html report each number's spread across them."),
    seed_teachers: bool = typer.Option(False, "--seed-teachers", help="With --seeds: one teacher per seed "
                                       "(default: every seed's student starts from the same teacher)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted sweep in its directory: "
                                "finished students are kept, an interrupted one resumes from its last epoch."),
) -> None:
    """Run RECIPE once per sparsity and N:M mask (one teacher) and mark the most compressed student that passes.

    Exit 0: a student passes (with --release: released to SWEEP/release); 1: none passes;
    2: bad recipe, sparsities or masks; 3: a student's run failed (completed students kept), or the
    MLflow server asked for could not be reached (the sweep's files are written).
    """
    from compress_gate.pipeline.sweep import parse_masks, parse_sparsities, run_sweep, split_values

    with exit_codes():
        loose_sparsities, loose_masks = split_values(ctx.args)
        values = parse_sparsities([*map(str, sparsity), *loose_sparsities])
        masks = parse_masks([*mask, *loose_masks])
        tracking = _recipe_tracking(recipe, mlflow_uri, mlflow_experiment)
        outcome = run_sweep(recipe, values, masks=masks, release=release, console=out_console,
                            execution=execution, address=address, seeds=seeds, seed_teachers=seed_teachers,
                            resume=resume)
        if tracking is not None:
            from compress_gate.tracking import log_sweep
            log_sweep(tracking, outcome.sweep_dir, outcome.rows, outcome.chosen_student)
    best = "none passes" if outcome.chosen is None else f"most compressed passing student: {outcome.chosen!r}" + (
        f" ({outcome.chosen_mask})" if outcome.chosen_mask else "")
    out_console.print(f"sweep: {best}; see {outcome.sweep_dir / 'sweep.html'}"
                      + (f"; released to {outcome.released}" if outcome.released else ""), highlight=False,
                      soft_wrap=True)
    raise typer.Exit(0 if outcome.chosen is not None else 1)


def main() -> None:
    """Console-script entry point; SIGTERM is handled like SIGINT (exit 143, outputs cleaned up)."""
    from compress_gate._signals import terminate_as_interrupt

    with terminate_as_interrupt():
        app()

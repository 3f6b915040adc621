"""``run_recipe``: the whole job of ``compress-gate run``, stage by stage.

config → data → teacher → compress → export → predict → benchmark → gate → bundle.
Every stage writes its artefact into the run directory (``output:`` in the recipe):

==================  ========================================================================
stage               artefacts
==================  ========================================================================
config              ``recipe.yaml`` (as given), ``sparseml_recipe.yaml`` (SparseML backend), ``run.json``
                    (with ``machine``: CPU model, instruction set, library versions)
data                ``data.npz`` (the eval-data contract, with ``inputs``; csv and celeba: the image
                    files' paths and transform, decoded on access); run.json ``skipped_images``
teacher             ``teacher.pt`` (state_dict; trained ones also cached, see ``teacher.py``)
compress            ``student.pt`` (state_dict), ``compression.json`` (backend, target, mask digests)
similarity          ``similarity.json`` (per-layer CKA / SVCCA, teacher vs student; :mod:`.similarity`)
export              ``onnx/*.onnx``, ``onnx/parity.json``, ``onnx/export.json`` (artefact per engine,
                    parity); ``compression.json`` gains the sparsity measured on the shipped graph
predict             ``predictions/<engine>/{teacher,student}.npz``, ``engines.json``
benchmark           ``benchmarks.json``
gate                ``gate/`` (report.json, report.html, junit.xml, MODEL_CARD.md, thresholds.json,
                    overrides.json)
bundle              ``release/`` on a pass, ``refused/`` on a fail
==================  ========================================================================

``run.json`` holds the status and each stage's wall time, rewritten after every
stage, so a failed run (exit 3) keeps its completed work and says where it stopped.
The run directory is new for every run (:mod:`compress_gate._outdir`: a marked
directory replaced whole, never a foreign one), so no file of an earlier run remains.
A stage that fails or is interrupted (SIGINT, SIGTERM) has its partial artefacts
removed; run.json then says ``failed`` or ``interrupted`` and names the stage. Before
any data is loaded, the run directory, the deployment engine and the SparseML recipe
are checked (exit 2 in seconds, not after training): a run directory that is, holds or
lies inside one of the recipe's inputs is refused, and so is a second call writing the
same run directory while one runs (:mod:`compress_gate._lock`).

With ``resume=True`` (``run --resume``) an interrupted or failed run directory of the same
recipe is continued instead of replaced: the stages run again, the teacher's and the
student's training continue from their last finished epoch (``checkpoints/``, removed when
the run finishes; :mod:`compress_gate.pipeline._resume`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate import __version__
from compress_gate._atomic import atomic_path, write_json, write_text
from compress_gate._outdir import check_output_dir, discard_output_dir, fresh_directory, output_lock
from compress_gate._signals import terminate_as_interrupt
from compress_gate.config.inputs import recipe_inputs
from compress_gate.config.run import RunConfig, load_run_config, recipe_hash
from compress_gate.engines.machine import run_machine
from compress_gate.errors import InputError
from compress_gate.pipeline._progress import RunProgress
from compress_gate.pipeline._record import RunRecord, json_ready
from compress_gate.pipeline._resume import checkpoint_for, remove_checkpoints, student_checkpoint_key
from compress_gate.pipeline._student_weights import mask_digests, shipped_sparsity
from compress_gate.pipeline.preprocess import normalize_for_model, preprocessing, record_preprocessing
from compress_gate.pipeline.summary import metrics_summary, summary_table

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from compress_gate.compress import CompressionResult
    from compress_gate.compress.backend import Compressor
    from compress_gate.data.contract import EvalData
    from compress_gate.models.checkpoint import EpochCheckpoint
    from compress_gate.models.device import Placement
    from compress_gate.gate import GateResult
    from compress_gate.report.schema import Report, RunSection, RunSummary
    from compress_gate.pipeline.export import ExportedModels

__all__ = ["RunOutcome", "STAGE_ARTEFACTS", "run_recipe", "check_run_dir", "mask_digests", "shipped_sparsity"]


@dataclass(frozen=True)
class RunOutcome:
    """What a run decided: ``passed``, where it wrote (``bundle_dir`` is release/ or refused/)."""

    passed: bool
    run_dir: Path
    bundle_dir: Path
    report: Report
    summary: dict[str, Any]
    stage_seconds: dict[str, float]


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _save_state(model: torch.nn.Module, path: Path) -> None:
    """``model``'s state_dict, on the CPU whatever device it trained on."""
    import torch

    with atomic_path(path) as tmp:
        torch.save({name: value.cpu() for name, value in model.state_dict().items()}, tmp)


def _to_cpu(*models: torch.nn.Module) -> None:
    """Move ``models`` to the CPU in place (a QAT student's float twin, outside its module tree, too)."""
    for model in models:
        model.cpu()
        float_twin = getattr(model, "float_model", None)
        if float_twin is not None:
            float_twin.cpu()


#: What each stage writes in the run directory. A stage that fails or is interrupted has
#: these removed (partial output); the run directory itself is new for every run.
STAGE_ARTEFACTS = {"data": ("data.npz",), "teacher": ("teacher.pt",), "compress": ("student.pt", "compression.json"),
                   "similarity": ("similarity.json",),
                   "export": ("onnx",), "predict": ("predictions", "engines.json"), "benchmark": ("benchmarks.json",),
                   "report": ("gate",), "bundle": ("release", "refused")}


def check_run_dir(config: RunConfig, path: Path) -> None:
    """Refuse a run directory compress-gate may not replace, or one that is, holds or lies inside
    one of the recipe's inputs (:func:`compress_gate.config.inputs.recipe_inputs`)."""
    try:
        check_output_dir(config.output, what="run directory", inputs=recipe_inputs(config, path))
    except InputError as err:
        raise InputError(f"{path}: `output`: {err}") from err


def _check_before_work(config: RunConfig, path: Path, compressor: Compressor, *, resume: bool = False) -> Placement:
    """The checks that need no data, in seconds, under the run directory's lock; the run's device.

    The model's factory (or its torchvision/timm extra) must import; ``device``/``amp`` must
    name a device present here (:func:`compress_gate.models.device.select_device`); the deployment engine
    must run here; the backend must accept its recipe section
    (:meth:`~compress_gate.compress.backend.Compressor.check_recipe`: a SparseML recipe must
    load). A failure removes an earlier run's directory, so its release cannot pass for this call
    (with ``resume`` it stays: it holds no release, and its checkpoints are what resume needs).
    """
    try:
        from compress_gate.models.registry import check_model_source

        try:
            check_model_source(config.model)
        except InputError as err:
            raise InputError(f"{path}: {err}") from err
        _check_deployment_engine(config, path)
        try:
            compressor.check_recipe()
        except InputError as err:
            raise InputError(f"{path}: {err}") from err
        from compress_gate.models.device import select_device

        return select_device(config.device, config.amp, source=str(path))
    except InputError:
        if not resume:
            discard_output_dir(config.output)
        raise


def _prepare_run_dir(path: Path, config: RunConfig, compressor: Compressor, *,
                     resume: bool = False) -> tuple[str, dict[str, Any]]:
    """Replace the run directory by a new marked one, copy the recipe (and the backend's
    :meth:`~compress_gate.compress.backend.Compressor.run_files`, e.g. a SparseML recipe) in.

    Returns the recipe hash and, with ``resume``, where the continued run stopped (the
    directory is kept: :func:`compress_gate.pipeline._resume.check_resumable`). See
    :mod:`compress_gate._outdir`: only a directory compress-gate made (or an empty one) is
    replaced, so nothing of an earlier run stays.
    """
    digest = recipe_hash(path, config)
    if resume:
        from compress_gate.pipeline._resume import check_resumable

        facts = check_resumable(config.output, digest, path)
        stopped = facts.get("interrupted_stage") or facts.get("failed_stage")
        return digest, {"status": facts.get("status"), "stage": stopped, "created": facts.get("created")}
    run_dir = fresh_directory(config.output, what="run directory", inputs=recipe_inputs(config, path))
    shutil.copyfile(path, run_dir / "recipe.yaml")
    for name, text in compressor.run_files().items():
        write_text(run_dir / name, text)
    return digest, {}


def _check_deployment_engine(config: RunConfig, path: Path) -> None:
    """Refuse, before any work, a deployment engine this machine cannot run (its predictions are judged)."""
    from compress_gate.engines import engine_availability

    reason = engine_availability()[config.engines.deployment]
    if reason:
        raise InputError(f"{path}: `engines.deployment` = {config.engines.deployment!r} cannot run on this "
                         f"machine: {reason}. The gate judges the deployment engine's predictions, so run the "
                         "recipe where it is available, or deploy on `onnxruntime`.")


def _check_gate_fits(config: RunConfig, data: EvalData, path: Path) -> None:
    """Refuse, before any training, a gate setting the data's task cannot take."""
    if config.gate.mitigation.calibrate_thresholds and data.task == "multiclass":
        raise InputError(f"{path}: `gate.mitigation.calibrate_thresholds` is true but the data is multi-class "
                         "(the prediction is the argmax class, there is no threshold to calibrate). Set it to "
                         "false.")


def _compressor(config: RunConfig, path: Path) -> Compressor:
    """The recipe's compression backend; refused before any work when its extra is not installed."""
    from compress_gate.pipeline.student import compressor_for

    try:
        return compressor_for(config)
    except InputError as err:
        raise InputError(f"{path}: {err}") from err


def _compress(config: RunConfig, data: EvalData, teacher: torch.nn.Module, compressor: Compressor,
              progress: RunProgress, checkpoint: EpochCheckpoint,
              placement: Placement) -> tuple[CompressionResult, dict[str, Any]]:
    from compress_gate.pipeline.student import compress_student

    result = compress_student(config, data, teacher, compressor=compressor,
                              progress=progress.trainer(f"compress ({compressor.name} backend)"),
                              checkpoint=checkpoint, placement=placement)
    _save_state(result.model, config.output / "student.pt")
    # trained_sparsity: the backend's own count on the torch student; the report's overall_sparsity is
    # measured on the shipped graph after export (shipped_sparsity), where quantization may add zeros.
    facts = {"backend": compressor.name, "target_sparsity": result.target_sparsity,
             "trained_sparsity": result.overall_sparsity, "quantized": result.quantized,
             "distilled": result.distilled, "epochs": result.epochs, "mask_sha256": mask_digests(result.model)}
    write_json(config.output / "compression.json", json_ready(facts))
    return result, facts


def _benchmark(config: RunConfig, exported: ExportedModels, input_shape: tuple[int, ...],
               progress: RunProgress) -> dict[str, Any]:
    """Teacher vs student on every benchmark engine, each engine running its own student artefact."""
    from compress_gate.engines import benchmark_models

    bench = config.engines.benchmark
    students = {kind: str(exported.student_for(kind)) for kind in bench.engines}
    result = benchmark_models({"teacher": str(exported.teacher), "student": students}, list(bench.engines),
                              input_shape=input_shape, batch_sizes=bench.batch_sizes, warmup=bench.warmup,
                              iterations=bench.iterations, seed=config.seed, progress=progress.status("benchmark"))
    write_json(config.output / "benchmarks.json", json_ready(result))
    return result


def _write_bundle(config: RunConfig, gate: GateResult, *, data: EvalData, shipped: Path, quantized: bool,
                  digest: str, summary: dict[str, Any]) -> Path:
    from compress_gate.bundle import write_refusal, write_release

    run_dir = config.output
    if not gate.passed:
        return write_refusal(run_dir, gate_dir=run_dir / "gate")
    model_info = {"engine": config.engines.deployment, "artefact": shipped.name, "quantized": quantized,
                  "task": data.task, "attribute_names": list(data.attribute_names),
                  "input_shape": list(data.inputs.shape[1:]), "preprocess": preprocessing(config, data)}
    return write_release(run_dir, gate_dir=run_dir / "gate", model_onnx=shipped, recipe_hash=digest,
                         seed=config.seed, metrics_summary=summary, model_info=model_info)


def run_recipe(path: str | Path, *, console: Console | None = None, resume: bool = False) -> RunOutcome:
    """Run the recipe at ``path`` end to end and return the outcome.

    Validates the recipe and every check that needs no work (run directory, backend, engines)
    first; then, under the run directory's one-writer lock, runs the stages data, teacher,
    compress, similarity, export, predict, benchmark (when enabled), gate, report and bundle,
    each timed and recorded in ``run.json``, and writes ``release/`` on a pass or
    ``refused/`` on a refusal.

    ``resume``: continue the interrupted or failed run in the recipe's run directory.

    Raises
    ------
    InputError
        The recipe, the data or a file it names is invalid; with ``resume``, the run directory
        holds no interrupted run of this recipe.
    RuntimeFailure
        A stage failed at run time (engine crash, parity, divergence, out of memory); the
        completed stages stay in the run directory and run.json names the failed one.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    path = Path(path).resolve()
    with terminate_as_interrupt():
        config = load_run_config(path)
        compressor = _compressor(config, path)
        check_run_dir(config, path)
        with output_lock(config.output, what="run directory"):     # one writer per run directory
            placement = _check_before_work(config, path, compressor, resume=resume)
            run_dir = config.output
            digest, resumed = _prepare_run_dir(path, config, compressor, resume=resume)
            machine = run_machine()
            record = RunRecord(run_dir, {"recipe": str(path), "recipe_hash": digest, "seed": config.seed,
                                         "compress_gate_version": __version__,
                                         "deployment_engine": config.engines.deployment,
                                         "machine": machine, "device": placement.describe(machine["cpu_model"]),
                                         **({"resumed_from": resumed} if resume else {})})
            record.stage_seconds["config"] = round(time.perf_counter() - start, 3)
            record.stage_cpu_seconds["config"] = round(time.process_time() - cpu_start, 3)
            with record.running():
                return _run_stages(path, config, digest, record, console, compressor, placement)


def _stage(record: RunRecord, name: str) -> contextlib.AbstractContextManager[None]:
    return record.stage(name, artefacts=STAGE_ARTEFACTS.get(name, ()))


def _export(config: RunConfig, data: EvalData, teacher: torch.nn.Module, result: CompressionResult,
            compressor: Compressor, compression: dict[str, Any]) -> tuple[ExportedModels, Path]:
    """The export stage: the teacher's and the student's ONNX artefacts with the preprocessing record,
    the shipped student's sparsity added to ``compression`` (written as compression.json), and
    onnx/export.json; returns the exported models and the artefact that ships."""
    from compress_gate.pipeline.export import export_models

    run_dir = config.output
    exported = export_models(teacher, result, compressor, task=data.task, input_shape=tuple(data.inputs.shape[1:]),
                             calib_inputs=data.inputs[data.mask("calib")], out_dir=run_dir / "onnx",
                             config=config.export)
    record_preprocessing([exported.teacher, *exported.students.values()], preprocessing(config, data))
    shipped = exported.student_for(config.engines.deployment)
    compression.update(shipped_sparsity(result, shipped))
    write_json(run_dir / "compression.json", json_ready(compression))
    write_json(run_dir / "onnx" / "export.json", json_ready({**exported.describe(), "ships": shipped.name,
                                                             "deployment_engine": config.engines.deployment}))
    return exported, shipped


def _run_section(record: RunRecord, compression: dict[str, Any], export: dict[str, Any],
                 similarity: dict[str, Any], headline: RunSummary) -> RunSection:
    """The report's typed ``run`` section: run.json's facts (recipe, seed, versions, stage times),
    the compression and export facts, the representation similarity and the headline numbers."""
    from compress_gate.report.schema import RunSection

    facts = {k: v for k, v in record.as_dict().items() if k in RunSection.model_fields}
    return RunSection(**json_ready({**facts, "compression": compression, "export": export,
                                    "similarity": similarity}), summary=headline)


def _run_stages(path: Path, config: RunConfig, digest: str, record: RunRecord, console: Console,
                compressor: Compressor, placement: Placement) -> RunOutcome:
    """The stages after ``config``, in order (data, teacher, compress, similarity, export, predict,
    benchmark when enabled, gate, report, bundle), each timed with its artefacts in run.json;
    the report stage puts the run's section (similarity included) in the typed report before
    any file is rendered."""
    run_dir = config.output
    _seed_everything(config.seed)
    with record.capture_warnings():
        with RunProgress(console) as progress:
            with _stage(record, "data"):
                from compress_gate.data import load_dataset, save_eval_data

                data = load_dataset(config.data, base_dir=path.parent, progress=progress.counter("load images"))
                data = normalize_for_model(config, data)
                _check_gate_fits(config, data, path)
                save_eval_data(data, run_dir / "data.npz")
                if data.skipped:     # on_bad_image: skip; listed here and in report.json's run section
                    record.update(skipped_images=[dataclasses.asdict(s) for s in data.skipped])
            with _stage(record, "teacher"):
                from compress_gate.pipeline.teacher import obtain_teacher

                teacher, info = obtain_teacher(config, data, save_to=run_dir / "teacher.pt",
                                               progress=progress.trainer("train dense teacher"), checkpoint_in=run_dir,
                                               placement=placement)
                record.update(teacher={"source": info.source, "path": str(info.path), "cache_key": info.cache_key})
            with _stage(record, "compress"):
                checkpoint = checkpoint_for(run_dir, "student", student_checkpoint_key(digest, teacher, data))
                result, compression = _compress(config, data, teacher, compressor, progress, checkpoint, placement)
            with _stage(record, "similarity"):
                from compress_gate.pipeline.similarity import run_similarity

                similarity = run_similarity(teacher.to(placement.device), result.model, data, seed=config.seed,
                                            run_dir=run_dir)
            _to_cpu(teacher, result.model)     # ONNX export runs on the CPU
            with _stage(record, "export"):
                exported, shipped = _export(config, data, teacher, result, compressor, compression)
            with _stage(record, "predict"):
                from compress_gate.pipeline.predict import predict_exported

                scored = predict_exported(data, exported, deployment=config.engines.deployment,
                                          check=config.engines.check, batch_size=config.engines.batch_size,
                                          out_dir=run_dir / "predictions",
                                          progress=progress.rows(int(data.mask("calib", "test").sum())))
                write_json(run_dir / "engines.json", json_ready({"deployment": config.engines.deployment,
                                                                 "agreement": scored.checks,
                                                                 "predictions": scored.files}))
            benchmarks = None
            if config.engines.benchmark.enabled:
                with _stage(record, "benchmark"):
                    benchmarks = _benchmark(config, exported, tuple(data.inputs.shape[1:]), progress)
            with _stage(record, "gate"):
                from compress_gate.gate import evaluate

                progress.note(f"gate: judging with {config.gate.n_resamples} bootstrap resamples")
                gate = evaluate(data, scored.teacher, [scored.student], config.gate, engine_checks=scored.checks,
                                benchmarks=benchmarks, deployment_engine=config.engines.deployment,
                                inputs={"data": str(run_dir / "data.npz"), "teacher": [str(exported.teacher)],
                                        "students": [str(shipped)], "predictions": scored.files})
        with _stage(record, "report"):
            from compress_gate.pipeline.gate import write_gate_outputs

            headline = metrics_summary(gate.report, compression=compression)
            summary = json_ready(headline.model_dump(mode="json"))
            gate = gate.with_run(_run_section(record, compression, {**exported.describe(), "ships": shipped.name},
                                              similarity, headline))
            write_gate_outputs(gate, run_dir / "gate")
        with _stage(record, "bundle"):
            bundle_dir = _write_bundle(config, gate, data=data, shipped=shipped, quantized=result.quantized,
                                       digest=digest, summary=summary)
    remove_checkpoints(run_dir)
    record.update(status="released" if gate.passed else "refused", bundle=str(bundle_dir), summary=summary)
    console.print(summary_table(headline, record.stage_seconds, bundle=str(bundle_dir)))
    return RunOutcome(passed=gate.passed, run_dir=run_dir, bundle_dir=bundle_dir, report=gate.report,
                      summary=summary, stage_seconds=dict(record.stage_seconds))

"""``run_sweep``: one teacher, one student per sparsity (or N:M mask), each run and gated; the best one marked.

For each sparsity s the recipe's SparseML schedule is run with its top-level variable
``final_sparsity`` set to s (the pruning modifiers read it as ``eval(final_sparsity)``);
a torch-backend recipe gets ``compression.pruning.final_sparsity: s`` (its own mask,
which must be ``unstructured``). Torch-backend recipes also take N:M masks
(``--mask 2:4 1:4 1:8``, Iofinova et al., Appendix F): the student of mask N:M gets
``compression.pruning.mask: "N:M"`` and ``final_sparsity: 1 - N/M``, runs in
``<sweep>/mask-<N>of<M>/`` and is a row beside the unstructured ones at that sparsity.
Each student is a complete ``compress-gate run`` (:func:`~compress_gate.pipeline.run_recipe`:
export, predictions, benchmark, gate, bundle) of a generated recipe,
``<sweep>/recipes/sparsity-<s>.yaml``: the validated recipe with absolute paths, its own
``output: <sweep>/sparsity-<s>``, the SparseML recipe inline with ``final_sparsity: s``,
and ``model.cache_dir`` pointing at the recipe's teacher cache, so the dense teacher is
trained once (by the first student) and loaded by the others. Each student's directory
is an ordinary run directory (``release/`` on a pass, ``refused/`` on a refusal).

When the recipe calibrates thresholds, each student's gate is also rerun on its own
predictions with an override budget of 0 (``<sweep>/calibrated/sparsity-<s>/``), so the worst BA
increase is shown raw, after threshold calibration alone, and after calibration and overrides.

Outputs in the sweep directory (the recipe's ``output``)::

    sweep.json        per sparsity: verdict, the headline numbers and each limit's interval
    sweep.html        the curves against sparsity (:mod:`compress_gate.pipeline._sweep_html`)
    release/          with ``--release``: a copy of the chosen student's release bundle

The sweep directory follows the output policy of every command (:mod:`compress_gate._outdir`):
it is a directory compress-gate made (it holds the marker ``.compress-gate``), replaced whole
by the next sweep, so nothing but what the tool wrote is ever deleted; a non-empty directory
without the marker is refused, and so is one that is, holds or lies inside the sweep recipe
or a path it names. One sweep writes a directory at a time (:mod:`compress_gate._lock`).
Every N:M mask is checked against the model's weights before the first student trains.

The **chosen** student is the most compressed one (highest requested sparsity) whose
verdict is ``pass``; ``None`` when none passes. Between passing students of equal sparsity
the first in row order wins (rows are sorted by sparsity, unstructured before N:M); its
run directory's name is ``chosen_student`` in sweep.json.

Each row also carries the student's representation similarity to the teacher (its run's
``similarity.json``: mean CKA and SVCCA over layers, and per layer), and sweep.json's
``correlations`` relate each similarity to CEV, SDE and the worst BA increase across the
students (Pearson and Spearman, with n; :mod:`compress_gate.pipeline._correlation`).

With ``execution="ray"`` (``compress-gate sweep --execution ray [--address ADDR]``) the teacher is
trained first, as one Ray task, into the recipe's teacher cache; then each student's run is one
Ray task (:func:`compress_gate.execution.map_tasks`: one CPU, retried when its worker dies), so a
cluster runs the students in parallel, each loading the cached teacher. The recipes, seeds,
cache and outputs are those of the local default, which runs the students one after another;
the driver then reads the reports and writes the calibrated reruns, ``sweep.json`` and
``sweep.html`` as the local default does. On several machines the sweep directory and the
cache must be on a filesystem every node shares.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from compress_gate._atomic import atomic_directory, write_json, write_text
from compress_gate._outdir import MARKER, check_output_dir, fresh_directory, output_lock
from compress_gate.compress.backend import Compressor, get_compressor
from compress_gate.config.inputs import recipe_inputs
from compress_gate.config.run import RunConfig, load_run_config
from compress_gate.execution import Execution, check_execution
from compress_gate.errors import InputError
from compress_gate.pipeline._record import json_ready
from compress_gate.pipeline._sweep_similarity import similarity_correlations, student_similarity
from compress_gate.pipeline._sweep_masks import (check_masks_fit, check_sparsities, nm_sparsity, parse_masks,
                                                  parse_sparsities, split_values)
from compress_gate.pipeline._sweep_seeds import check_seeds, seed_spread, seeded_dir_name, seeded_recipe
from compress_gate.report import largest_increase

if TYPE_CHECKING:
    from rich.console import Console

    from compress_gate.pipeline.run import RunOutcome

__all__ = ["SweepOutcome", "SWEEP_ARTEFACTS", "run_sweep", "student_numbers", "student_recipe",
           "student_dir_name", "choose_student", "parse_sparsities", "parse_masks",
           "split_values", "student_similarity", "similarity_correlations"]

#: What a sweep writes directly in its directory besides the students' run directories.
SWEEP_ARTEFACTS = ("sweep.json", "sweep.html", "recipes", "calibrated", "release", MARKER)


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep found: one row per student (see :func:`student_numbers`), the chosen sparsity (and its
    N:M mask when the chosen student is an N:M one)."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    chosen: float | None
    released: Path | None
    chosen_mask: str | None = None
    chosen_student: str | None = None


def _check_students(compressor: Compressor, sparsities: Sequence[float], masks: Sequence[str],
                    source: Path) -> list[tuple[float, str | None]]:
    """The students as (sparsity, mask or None), sorted by sparsity, unstructured first; refused when the
    recipe's backend cannot take them (:meth:`~compress_gate.compress.backend.Compressor.check_students`)."""
    compressor.check_students(sparsities, masks, source=source)
    values = check_sparsities(sparsities, source, allow_none=bool(masks))
    return sorted([(s, None) for s in values] + [(nm_sparsity(m), m) for m in parse_masks(masks)],
                  key=lambda student: (student[0], student[1] is not None))


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (the inline SparseML recipe) as ``|`` blocks."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def student_recipe(config: RunConfig, sparsity: float, *, sweep_dir: Path, source: str | Path,
                   mask: str | None = None, compressor: Compressor | None = None) -> dict[str, Any]:
    """The run recipe (a YAML-ready mapping) of the student at ``sparsity`` (module docstring).

    ``config`` is the validated sweep recipe (absolute paths); ``None`` values are left out,
    so every key takes its default as in the original recipe. The ``compression:`` section is
    the backend's :meth:`~compress_gate.compress.backend.Compressor.student_compression` at
    ``sparsity`` (and ``mask``): SparseML's recipe inline with its ``final_sparsity`` set, the
    torch backend's ``pruning.final_sparsity`` (and ``mask``). ``compressor`` defaults to the
    recipe's backend (its packages need not be installed).
    """
    compressor = compressor or get_compressor(config.compression, config.export, installed=False)
    raw = config.model_dump(mode="json", exclude_none=True, by_alias=True)  # tracking.register
    raw["output"] = str(sweep_dir / student_dir_name(sparsity, mask))
    raw["model"]["cache_dir"] = str(config.cache_dir)
    raw["compression"] = compressor.student_compression(sparsity, mask=mask, source=source)
    return raw


def student_dir_name(sparsity: float, mask: str | None = None) -> str:
    """``sparsity-0.8`` (or ``mask-2of4`` for an N:M student): its run directory inside the sweep directory.

    The sparsity is written as Python's shortest round-trip text (``repr``), so two different
    sparsities never share a directory (``0.5`` and ``0.5000001`` are ``sparsity-0.5`` and
    ``sparsity-0.5000001``; six significant digits would have named both ``sparsity-0.5``).
    """
    return f"sparsity-{float(sparsity)!r}" if mask is None else "mask-" + mask.replace(":", "of")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _mean_over_attributes(per_attribute: Any, metric: str) -> float | None:
    values = [_number(_get(row, metric)) for row in (per_attribute or {}).values()] \
        if isinstance(per_attribute, Mapping) else []
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _interval(value: Any) -> list[float] | None:
    if isinstance(value, Sequence) and len(value) == 2 and all(_number(v) is not None for v in value):
        return [float(value[0]), float(value[1])]
    return None


def student_numbers(report: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers a sweep plots, read from one student's ``report.json``.

    The only place the sweep reads a report, and it reads defensively: a missing key or
    a non-number gives ``None``. Means over attributes skip undefined ones.

    Returns keys ``verdict``, ``sparsity`` (achieved, pooled over the pruned weights),
    ``accuracy`` / ``teacher_accuracy`` / ``accuracy_mitigated``, ``uncertainty`` /
    ``teacher_uncertainty`` and ``tcb`` / ``teacher_tcb`` (means over attributes),
    ``ba_increase`` / ``ba_increase_mitigated`` (worst over (attribute, identity) pairs),
    ``cev`` / ``sde`` with ``cev_ci`` / ``sde_ci``,
    ``speedup`` (``{"<engine>@<batch>": teacher time / student time}``) and ``limits``
    (each limit's ``name``, ``metric``, ``observed``, ``ci``, ``limit``, ``outcome``).
    """
    metrics, mitigation = _get(report, "metrics"), _get(report, "mitigation")
    student, teacher = _get(metrics, "student", "per_attribute"), _get(metrics, "teacher", "per_attribute")
    limits = []
    for entry in _get(report, "limits") or []:
        outcome = _get(entry, "outcome") or ("pass" if _get(entry, "passed") else "fail")
        limits.append({"name": _get(entry, "name"), "metric": _get(entry, "metric"),
                       "observed": _number(_get(entry, "observed")), "ci": _interval(_get(entry, "ci")),
                       "limit": _number(_get(entry, "limit")), "outcome": outcome})
    speedup = _get(report, "run", "summary", "speedup")
    return {
        "verdict": _get(report, "verdict"),
        "sparsity": _number(_get(report, "run", "compression", "overall_sparsity")),
        "accuracy": _number(_get(metrics, "student", "accuracy")),
        "teacher_accuracy": _number(_get(metrics, "teacher", "accuracy")),
        "accuracy_mitigated": _number(_get(mitigation, "after", "accuracy")),
        "uncertainty": _mean_over_attributes(student, "uncertainty"),
        "teacher_uncertainty": _mean_over_attributes(teacher, "uncertainty"),
        "tcb": _mean_over_attributes(student, "tcb"),
        "teacher_tcb": _mean_over_attributes(teacher, "tcb"),
        "ba_increase": _largest_ba_increase(_get(metrics, "ba", "increase")),
        "ba_increase_mitigated": _largest_ba_increase(_get(mitigation, "after", "ba", "increase")),
        "cev": _number(_get(metrics, "cev", "value")), "cev_ci": _interval(_get(metrics, "cev", "ci")),
        "sde": _number(_get(metrics, "sde", "value")), "sde_ci": _interval(_get(metrics, "sde", "ci")),
        "speedup": {str(k): float(v) for k, v in speedup.items() if _number(v) is not None}
        if isinstance(speedup, Mapping) else {},
        "limits": limits,
    }


def _largest_ba_increase(increase: Any) -> float | None:
    """The largest defined BA increase of ``{attribute: {identity: value}}``; None if none or not a mapping."""
    if not isinstance(increase, Mapping) or not all(isinstance(row, Mapping) for row in increase.values()):
        return None
    found = largest_increase(increase)
    return None if found is None else found[1]


def choose_student(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """The requested sparsity of the most compressed row whose verdict is ``pass``; None if none passes."""
    passing = [row["requested_sparsity"] for row in rows if row.get("verdict") == "pass"]
    return max(passing) if passing else None


def _chosen_row(rows: Sequence[Mapping[str, Any]], chosen: float | None) -> Mapping[str, Any] | None:
    """The first passing row at the ``chosen`` sparsity (rows: unstructured before N:M at equal sparsity)."""
    return next((row for row in rows if row.get("verdict") == "pass" and row["requested_sparsity"] == chosen), None)


def _calibrated_report(config: RunConfig, run_dir: Path, out: Path) -> dict[str, Any] | None:
    """The student's gate rerun on its own predictions with thresholds only (override budget 0).

    Written to ``out`` by :func:`compress_gate.pipeline.gate.run_gate` (its limits file beside it,
    ``<out>.limits.yaml``, since ``out`` is a directory the gate makes whole), so the
    sweep can show the worst BA increase after threshold calibration alone beside the raw and
    the fully mitigated one. ``None`` when the recipe does not calibrate thresholds.
    """
    from compress_gate.pipeline.gate import run_gate

    if not config.gate.mitigation.calibrate_thresholds:
        return None
    gate = config.gate.model_dump(mode="json", exclude_none=True)
    gate["mitigation"]["override_budget"] = 0.0
    limits = write_text(out.with_name(f"{out.name}.limits.yaml"), yaml.safe_dump(gate, sort_keys=False))
    predictions = run_dir / "predictions" / config.engines.deployment
    run_gate(data=run_dir / "data.npz", out=out, limits=limits, teacher=predictions / "teacher.npz",
             students=[predictions / "student.npz"])
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _check_sweep_dir(config: RunConfig, source: Path) -> None:
    """Refuse, before any work, a sweep directory the tool may not replace (:mod:`compress_gate._outdir`:
    only one it made, holding its marker, or an empty one), or one that is, holds or lies inside one of the
    recipe's inputs (the sweep recipe itself included)."""
    try:
        check_output_dir(config.output, what="sweep directory", inputs=recipe_inputs(config, source))
    except InputError as err:
        raise InputError(f"{source}: `output`: {err}") from err


def _release(sweep_dir: Path, student_dir: Path) -> Path:
    """Copy the chosen student's verified release bundle to ``<sweep>/release`` (atomically)."""
    from compress_gate.bundle import verify_bundle

    bundle = student_dir / "release"
    verify_bundle(bundle)
    with atomic_directory(sweep_dir / "release") as tmp:
        shutil.copytree(bundle, tmp, dirs_exist_ok=True)
    return sweep_dir / "release"


def run_sweep(path: str | Path, sparsities: Sequence[float], *, masks: Sequence[str] = (), release: bool = False,
              console: Console | None = None, execution: Execution = "local", address: str | None = None,
              seeds: int = 1, seed_teachers: bool = False) -> SweepOutcome:
    """Run the recipe at ``path`` once per sparsity (and N:M mask) and mark the most compressed passing student.

    Writes the outputs of the module docstring. With ``release``, copies the chosen
    student's bundle to ``<sweep>/release`` (nothing is copied when no student passes).
    ``masks`` (``"2:4"``, ...) need a torch-backend recipe. ``execution="ray"`` runs the
    students as Ray tasks on the cluster at ``address`` (or a local one), the teacher first
    (module docstring). ``seeds`` > 1 trains that many students per setting
    (:mod:`compress_gate.pipeline._sweep_seeds`; ``seed_teachers``: one teacher per seed);
    a setting is then chosen only when every seed's student passes.

    Raises
    ------
    InputError
        Bad recipe, sparsities or masks, a SparseML recipe without a ``final_sparsity``
        variable, or masks for a SparseML recipe; an unknown execution, or ``"ray"`` without
        the ``[ray]`` extra (all before any work; every student recipe is validated before
        the first one runs).
    RuntimeFailure
        A student's run failed; the students completed before it stay on disk.
    """
    execution = check_execution(execution, what="the sweep's students", address=address)
    seeds = check_seeds(seeds)
    source = Path(path).resolve()
    config = load_run_config(source)
    compressor = get_compressor(config.compression, config.export, installed=False)
    students = _check_students(compressor, sparsities, masks, source)
    compressor.student_compression(students[0][0], mask=students[0][1], source=source)  # refuse before any work
    _check_sweep_dir(config, source)
    with output_lock(config.output, what="sweep directory"):          # one writer per sweep directory
        check_masks_fit(config, masks, source)
        sweep_dir = fresh_directory(config.output, what="sweep directory", inputs=recipe_inputs(config, source))
        return _sweep(config, source, sweep_dir, students, compressor, masks=masks, release=release,
                      console=console, execution=execution, address=address, seeds=seeds,
                      seed_teachers=seed_teachers)


def _sweep(config: RunConfig, source: Path, sweep_dir: Path, students: list[tuple[float, str | None]],
           compressor: Compressor, *, masks: Sequence[str], release: bool, console: Console | None,
           execution: Execution, address: str | None, seeds: int, seed_teachers: bool) -> SweepOutcome:
    """:func:`run_sweep`'s work in the new sweep directory, under its lock: the student recipes (all
    validated before the first student runs), the students and their seeds, the choice, the summary."""
    from compress_gate.pipeline._sweep_html import write_sweep_html

    values = sorted(s for s, mask in students if mask is None)
    recipes = [student_recipe(config, sparsity, sweep_dir=sweep_dir, source=source, mask=mask,
                              compressor=compressor) for sparsity, mask in students]
    recipe_paths = [_write_recipe(sweep_dir, student_dir_name(*student), recipe)   # all valid before any work
                    for student, recipe in zip(students, recipes)]
    for seed in range(config.seed + 1, config.seed + seeds):
        for student, recipe in zip(students, recipes):
            name = seeded_dir_name(student_dir_name(*student), seed, config.seed)
            _write_recipe(sweep_dir, name, seeded_recipe(recipe, seed, output=sweep_dir / name, teacher_checkpoint=None))
    run = _runner(execution, address, console)
    rows = [_student_row(config, sweep_dir, student, config.seed, outcome)
            for student, outcome in zip(students, run(recipe_paths))]
    seed_rows = []
    for seed in range(config.seed + 1, config.seed + seeds):
        paths = []
        for student, recipe in zip(students, recipes):
            name = seeded_dir_name(student_dir_name(*student), seed, config.seed)
            teacher = None if seed_teachers else Path(rows[0]["run_dir"]) / "teacher.pt"
            paths.append(_write_recipe(sweep_dir, name, seeded_recipe(recipe, seed, output=sweep_dir / name,
                                                                      teacher_checkpoint=teacher)))
        seed_rows += [_student_row(config, sweep_dir, student, seed, outcome)
                      for student, outcome in zip(students, run(paths))]
    spread = seed_spread(rows + seed_rows, config.seed)
    unanimous = {(e["requested_sparsity"], e["mask"]) for e in spread if e["passed"] == len(e["seeds"])}
    chosen = choose_student([row for row in rows if (row["requested_sparsity"], row["mask"]) in unanimous])
    chosen_row = _chosen_row(rows, chosen)
    released = None
    if release and chosen_row is not None:
        released = _release(sweep_dir, Path(chosen_row["run_dir"]))
    summary = {"recipe": str(source), "sparsities": values, "masks": list(masks), "chosen": chosen,
               "chosen_student": None if chosen_row is None else chosen_row["student"],
               "released": None if released is None else str(released), "students": rows,
               "correlations": similarity_correlations(rows), "seeds": seeds, "seed_teachers": seed_teachers,
               "seed_students": seed_rows, "spread": spread if seeds > 1 else []}
    write_json(sweep_dir / "sweep.json", json_ready(summary))
    write_sweep_html(summary, sweep_dir / "sweep.html")
    return SweepOutcome(sweep_dir=sweep_dir, rows=rows, chosen=chosen, released=released,
                        chosen_mask=None if chosen_row is None else chosen_row["mask"],
                        chosen_student=None if chosen_row is None else chosen_row["student"])


def _write_recipe(sweep_dir: Path, name: str, recipe: Mapping[str, Any]) -> Path:
    """Write ``<sweep>/recipes/<name>.yaml`` and validate it (InputError on a bad one)."""
    path = write_text(sweep_dir / "recipes" / f"{name}.yaml", yaml.dump(dict(recipe), Dumper=_BlockDumper,
                                                                          sort_keys=False))
    load_run_config(path)
    return path


def _runner(execution: Execution, address: str | None, console: Console | None) -> Any:
    """recipe paths -> their run outcomes: Ray tasks (the teacher first), or one after another."""
    from compress_gate.pipeline.run import run_recipe

    if execution == "ray":
        return lambda paths: _students_on_ray(paths, address)
    return lambda paths: (run_recipe(path, console=console) for path in paths)


def _student_row(config: RunConfig, sweep_dir: Path, student: tuple[float, str | None], seed: int,
                 outcome: RunOutcome) -> dict[str, Any]:
    """One student's row of sweep.json: its report's numbers, similarity and the calibrated-only rerun."""
    report = json.loads((outcome.run_dir / "gate" / "report.json").read_text(encoding="utf-8"))
    row = {"requested_sparsity": student[0], "mask": student[1], "seed": seed, "student": outcome.run_dir.name,
           "run_dir": str(outcome.run_dir), "bundle": str(outcome.bundle_dir),
           "stage_seconds": outcome.stage_seconds, **student_numbers(report),
           **student_similarity(outcome.run_dir), "ba_increase_calibrated": None}
    start = time.perf_counter()
    calibrated = _calibrated_report(config, outcome.run_dir, sweep_dir / "calibrated" / outcome.run_dir.name)
    if calibrated is not None:
        row["ba_increase_calibrated"] = student_numbers(calibrated)["ba_increase_mitigated"]
        row["stage_seconds"] = {**row["stage_seconds"], "gate (calibrated only)": round(time.perf_counter() - start, 3)}
    return row


def _students_on_ray(recipe_paths: list[Path], address: str | None) -> list[RunOutcome]:
    """The teacher as one Ray task (:func:`_train_teacher`), then each student's run as one Ray task
    (:func:`_run_student`), in one Ray session; outcomes in recipe order."""
    from compress_gate.execution import map_tasks, ray_session

    with ray_session(address, what="the sweep's students"):
        map_tasks(_train_teacher, recipe_paths[:1], address=address, what="the sweep's teacher")
        return map_tasks(_run_student, recipe_paths, address=address, what="the sweep's students")


def _train_teacher(recipe_path: Path) -> str:
    """Train (or find) the dense teacher of a student recipe in its teacher cache, as ``compress-gate run``
    would; returns where it came from (``trained``, ``cache`` or ``checkpoint``)."""
    import tempfile

    from compress_gate.data import load_dataset
    from compress_gate.pipeline.teacher import obtain_teacher

    config = load_run_config(recipe_path)
    data = load_dataset(config.data, base_dir=recipe_path.parent)
    with tempfile.TemporaryDirectory() as tmp:
        return obtain_teacher(config, data, save_to=Path(tmp) / "teacher.pt")[1].source


def _run_student(recipe_path: Path) -> RunOutcome:
    """One student's ``compress-gate run`` in a Ray worker (its progress is not shown)."""
    from rich.console import Console

    from compress_gate.pipeline.run import run_recipe

    return run_recipe(recipe_path, console=Console(stderr=True, quiet=True))

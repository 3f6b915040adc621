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

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress_gate._atomic import atomic_directory, write_json
from compress_gate._outdir import MARKER, check_output_dir, fresh_directory, output_lock
from compress_gate.compress.backend import Compressor, get_compressor
from compress_gate.config.inputs import recipe_inputs
from compress_gate.config.run import RunConfig, load_run_config
from compress_gate.execution import Execution, check_execution
from compress_gate.errors import InputError
from compress_gate.pipeline._record import json_ready
from compress_gate.pipeline._sweep_masks import (check_masks_fit, check_sparsities, nm_sparsity, parse_masks,
                                                  parse_sparsities, split_values)
from compress_gate.pipeline._sweep_recipes import student_dir_name, student_recipe, write_student_recipe
from compress_gate.pipeline._sweep_rows import choose_student, chosen_student_row, student_numbers, student_row
from compress_gate.pipeline._sweep_seeds import check_seeds, seed_spread, seeded_dir_name, seeded_recipe
from compress_gate.pipeline._sweep_similarity import similarity_correlations, student_similarity
from compress_gate.pipeline._sweep_tasks import student_runner

if TYPE_CHECKING:
    from rich.console import Console

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
              seeds: int = 1, seed_teachers: bool = False, resume: bool = False) -> SweepOutcome:
    """Run the recipe at ``path`` once per sparsity (and N:M mask) and mark the most compressed passing student.

    Writes ``sweep.json`` and ``sweep.html`` beside one run directory per student (and the
    calibrated-only gate reruns) in the sweep directory. With ``release``, copies the chosen
    student's bundle to ``<sweep>/release`` (nothing is copied when no student passes).
    ``masks`` (``"2:4"``, ...) need a torch-backend recipe. ``execution="ray"`` runs the
    students as Ray tasks on the cluster at ``address`` (or a local one), the teacher first, into
    the recipe's teacher cache, so every student loads it. ``seeds`` > 1 trains that many students per setting
    (:mod:`compress_gate.pipeline._sweep_seeds`; ``seed_teachers``: one teacher per seed);
    a setting is then chosen only when every seed's student passes. ``resume`` continues an
    interrupted sweep in its directory (local execution; :mod:`compress_gate.pipeline._resume`).

    Raises
    ------
    InputError
        Bad recipe, sparsities or masks, a SparseML recipe without a ``final_sparsity``
        variable, or masks for a SparseML recipe; an unknown execution, or ``"ray"`` without
        the ``[ray]`` extra (all before any work; every student recipe is validated before
        the first one runs); ``resume`` with Ray, or of a directory holding no interrupted sweep.
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
    if resume and execution != "local":
        raise InputError("--resume continues a sweep whose students ran one after another (--execution local); "
                         "rerun a Ray sweep without --resume.")
    with output_lock(config.output, what="sweep directory"):          # one writer per sweep directory
        check_masks_fit(config, masks, source)
        if resume:
            from compress_gate.pipeline._resume import check_sweep_resumable

            check_sweep_resumable(config.output, source)
            sweep_dir = config.output
        else:
            sweep_dir = fresh_directory(config.output, what="sweep directory", inputs=recipe_inputs(config, source))
        return _sweep(config, source, sweep_dir, students, compressor, masks=masks, release=release,
                      console=console, execution=execution, address=address, seeds=seeds,
                      seed_teachers=seed_teachers, resume=resume)


def _sweep(config: RunConfig, source: Path, sweep_dir: Path, students: list[tuple[float, str | None]],
           compressor: Compressor, *, masks: Sequence[str], release: bool, console: Console | None,
           execution: Execution, address: str | None, seeds: int, seed_teachers: bool,
           resume: bool = False) -> SweepOutcome:
    """:func:`run_sweep`'s work in the new sweep directory, under its lock: the student recipes (all
    validated before the first student runs), the students and their seeds, the choice, the summary."""
    from compress_gate.pipeline._sweep_html import write_sweep_html

    values = sorted(s for s, mask in students if mask is None)
    recipes = [student_recipe(config, sparsity, sweep_dir=sweep_dir, source=source, mask=mask,
                              compressor=compressor) for sparsity, mask in students]
    recipe_paths = [write_student_recipe(sweep_dir, student_dir_name(*student), recipe)   # all valid before any work
                    for student, recipe in zip(students, recipes)]
    for seed in range(config.seed + 1, config.seed + seeds):
        for student, recipe in zip(students, recipes):
            name = seeded_dir_name(student_dir_name(*student), seed, config.seed)
            write_student_recipe(sweep_dir, name,
                                 seeded_recipe(recipe, seed, output=sweep_dir / name, teacher_checkpoint=None))
    run = student_runner(execution, address, console, resume=resume)
    rows = [student_row(config, sweep_dir, student, config.seed, outcome)
            for student, outcome in zip(students, run(recipe_paths))]
    seed_rows = []
    for seed in range(config.seed + 1, config.seed + seeds):
        paths = []
        for student, recipe in zip(students, recipes):
            name = seeded_dir_name(student_dir_name(*student), seed, config.seed)
            teacher = None if seed_teachers else Path(rows[0]["run_dir"]) / "teacher.pt"
            paths.append(write_student_recipe(sweep_dir, name, seeded_recipe(recipe, seed, output=sweep_dir / name,
                                                                             teacher_checkpoint=teacher)))
        seed_rows += [student_row(config, sweep_dir, student, seed, outcome)
                      for student, outcome in zip(students, run(paths))]
    spread = seed_spread(rows + seed_rows, config.seed)
    unanimous = {(e["requested_sparsity"], e["mask"]) for e in spread if e["passed"] == len(e["seeds"])}
    chosen = choose_student([row for row in rows if (row["requested_sparsity"], row["mask"]) in unanimous])
    chosen_row = chosen_student_row(rows, chosen)
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

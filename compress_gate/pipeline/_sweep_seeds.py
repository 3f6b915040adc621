"""Seeds in a sweep (``compress-gate sweep --seeds N``): N students per setting, the spread of every number.

A bootstrap interval over test rows says how much a number would move with other test rows;
it says nothing about another training run. ``--seeds N`` trains N students per setting
(sparsity or N:M mask) with the recipe's seed ``s`` and ``s + 1 .. s + N − 1``, and reports,
per setting and number, the mean, the sample standard deviation (n − 1) and the range over
the seeds beside the base seed's bootstrap interval.

- **One teacher** (default): every seed's student starts from the base seed's teacher (the
  seeded recipes load it as ``model.checkpoint``, the first base-seed run's ``teacher.pt``),
  so the spread is the students' alone (pruning masks, data order, fine-tuning).
- **N teachers** (``--seed-teachers``): every seed trains its own teacher (the teacher cache
  is keyed by the seed), so the spread includes the teacher's training.

A seeded student runs in ``<sweep>/<setting>.seed-<k>/`` (the base seed keeps ``<setting>/``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compress_gate.errors import InputError

__all__ = ["SPREAD_KEYS", "check_seeds", "seeded_dir_name", "seeded_recipe", "seed_spread", "spread_section"]

#: The numbers whose spread across seeds is reported, with the key of their bootstrap interval (or None).
SPREAD_KEYS: dict[str, str | None] = {
    "accuracy": None, "uncertainty": None, "tcb": None, "ba_increase": None, "ba_increase_calibrated": None,
    "ba_increase_mitigated": None, "cev": "cev_ci", "sde": "sde_ci", "sparsity": None,
}


def check_seeds(seeds: int) -> int:
    """``seeds`` as given when it is an integer in [1, 100]; InputError otherwise."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 100:
        raise InputError(f"--seeds {seeds!r} must be an integer from 1 to 100 (students per setting, e.g. "
                         "`--seeds 3`).")
    return seeds


def seeded_dir_name(base: str, seed: int, base_seed: int) -> str:
    """``base`` for the recipe's own seed, ``<base>.seed-<seed>`` for another."""
    return base if seed == base_seed else f"{base}.seed-{seed}"


def seeded_recipe(recipe: Mapping[str, Any], seed: int, *, output: Path,
                  teacher_checkpoint: Path | None) -> dict[str, Any]:
    """The student ``recipe`` (a YAML-ready mapping) with top-level ``seed`` and ``output`` replaced.

    With ``teacher_checkpoint`` the teacher is loaded from it (``model.checkpoint``; the
    training spec and cache are dropped), so the seed changes the student only. ``data.seed``
    and ``gate.seed`` keep the recipe's values: every seed is judged on the same rows with
    the same bootstrap resamples.
    """
    raw = {**recipe, "seed": seed, "output": str(output)}
    base_seed = recipe.get("seed", 0)
    for section in ("data", "gate"):
        if isinstance(raw.get(section), Mapping):
            raw[section] = {**raw[section], "seed": raw[section].get("seed", base_seed)}
    if teacher_checkpoint is not None:
        model = {key: value for key, value in raw["model"].items() if key not in ("train", "cache_dir")}
        raw["model"] = {**model, "checkpoint": str(teacher_checkpoint)}
    return raw


def _setting(row: Mapping[str, Any]) -> tuple[float, str | None]:
    return row["requested_sparsity"], row.get("mask")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def seed_spread(rows: Sequence[Mapping[str, Any]], base_seed: int) -> list[dict[str, Any]]:
    """Per setting (sparsity, mask), each :data:`SPREAD_KEYS` number over the seeds' rows.

    Each entry: ``requested_sparsity``, ``mask``, ``seeds`` (the seeds present), ``passed``
    (how many seeds' students pass), and per number ``{"n", "mean", "std", "min", "max",
    "values", "base", "base_ci"}``: ``std`` is the sample standard deviation (n − 1; ``None``
    below 2 defined values), ``values`` in seed order (``None`` where undefined), ``base``
    and ``base_ci`` the base seed's value and bootstrap interval. ``limits``: per gated limit
    (by name, in the base seed's order) the same statistics of its observed value, with
    ``base_ci`` the base seed's interval of the gate, ``passed`` the seeds whose limit
    passed, and ``outcomes`` in seed order (a seed without that limit gives ``None``).

    >>> rows = [{"requested_sparsity": 0.8, "seed": s, "accuracy": a, "verdict": "pass"}
    ...         for s, a in ((0, 0.90), (1, 0.86), (2, 0.88))]
    >>> entry = seed_spread(rows, 0)[0]
    >>> round(entry["accuracy"]["mean"], 4), round(entry["accuracy"]["std"], 4), entry["passed"]
    (0.88, 0.02, 3)
    """
    settings: dict[tuple[float, str | None], list[Mapping[str, Any]]] = {}
    for row in rows:
        settings.setdefault(_setting(row), []).append(row)
    out = []
    for (sparsity, mask), members in settings.items():
        members = sorted(members, key=lambda row: row["seed"])
        base = next((row for row in members if row["seed"] == base_seed), members[0])
        entry: dict[str, Any] = {"requested_sparsity": sparsity, "mask": mask,
                                 "seeds": [row["seed"] for row in members],
                                 "passed": sum(row.get("verdict") == "pass" for row in members)}
        for key, ci_key in SPREAD_KEYS.items():
            entry[key] = _statistics([_number(row.get(key)) for row in members], _number(base.get(key)),
                                     base.get(ci_key) if ci_key else None)
        entry["limits"] = _limit_spread(members, base)
        out.append(entry)
    return out


def _statistics(values: list[float | None], base: float | None, base_ci: Any) -> dict[str, Any]:
    """``n``, ``mean``, sample ``std`` (None below 2), ``min``, ``max`` of the defined ``values``, with
    ``values`` themselves and the base seed's value and interval."""
    defined = [v for v in values if v is not None]
    return {"n": len(defined), "mean": statistics.fmean(defined) if defined else None,
            "std": statistics.stdev(defined) if len(defined) > 1 else None,
            "min": min(defined, default=None), "max": max(defined, default=None),
            "values": values, "base": base, "base_ci": base_ci}


def _limit_spread(members: Sequence[Mapping[str, Any]], base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per gated limit of the base seed's row: its observed value over ``members`` (seed order) with the
    base seed's interval, how many seeds passed it, and each seed's outcome."""
    out = []
    for limit in base.get("limits") or []:
        found = [next((e for e in row.get("limits") or [] if e.get("name") == limit["name"]), None)
                 for row in members]
        outcomes = [None if e is None else e.get("outcome") for e in found]
        out.append({"name": limit["name"], "metric": limit.get("metric"),
                    "passed": sum(outcome == "pass" for outcome in outcomes), "outcomes": outcomes,
                    **_statistics([None if e is None else _number(e.get("observed")) for e in found],
                                  _number(limit.get("observed")), limit.get("ci"))})
    return out


def _cell(stat: Mapping[str, Any]) -> str:
    if stat["mean"] is None:
        return "–"
    spread = "n/a" if stat["std"] is None else f"{stat['std']:.4f}"
    ci = stat["base_ci"]
    interval = f" (base {stat['base']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}])" if ci and stat["base"] is not None else ""
    return f"{stat['mean']:.4f} ± {spread} [{stat['min']:.4f}, {stat['max']:.4f}]{interval}"


def spread_section(summary: Mapping[str, Any]) -> str:
    """sweep.html's "Spread across seeds" section (empty string for a one-seed sweep)."""
    from compress_gate.report.markup import paragraph, section, table

    spread = summary.get("spread") or []
    if int(summary.get("seeds", 1)) < 2 or not spread:
        return ""
    keys = list(SPREAD_KEYS)
    rows = [[f"{entry['requested_sparsity']:g}" + (f" ({entry['mask']})" if entry["mask"] else ""),
             f"{entry['passed']} / {len(entry['seeds'])}", *(_cell(entry[key]) for key in keys)] for entry in spread]
    teachers = "one teacher per seed" if summary.get("seed_teachers") else "one teacher for every seed"
    note = (f"{summary['seeds']} students per setting (seeds {', '.join(map(str, spread[0]['seeds']))}; "
            f"{teachers}). Each cell: mean ± sample standard deviation over the seeds [min, max]; in "
            "parentheses the base seed's value and its 95 % bootstrap interval over test rows, which does "
            "not cover another training run.")
    limit_rows = [[f"{entry['requested_sparsity']:g}" + (f" ({entry['mask']})" if entry["mask"] else ""),
                   limit["name"], f"{limit['passed']} / {len(entry['seeds'])}", _cell(limit)]
                  for entry in spread for limit in entry.get("limits", [])]
    limits = ([paragraph("The gated limits' observed values across the seeds (the number each limit judges), "
                         "with the base seed's interval from the gate."),
               table(["sparsity", "limit", "seeds passing", "observed across seeds"], limit_rows)]
              if limit_rows else [])
    return section("seeds", "Spread across seeds", paragraph(note),
                   table(["sparsity", "seeds passing", *keys], rows), *limits)

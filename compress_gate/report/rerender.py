"""``compress-gate report REPORT.json --out DIR``: the report files again, from a saved report.json.

The saved JSON is checked before anything is rendered:

1. it is JSON (no ``NaN``/``Infinity`` literals: report.json writes those as ``null`` and
   ``"inf"``) holding an object with an integer ``schema_version``;
2. a report of another schema version is migrated when an exact migration is registered
   in :data:`MIGRATIONS`, else refused naming both versions. Version 5 -> 6 is exact
   (:func:`_from_version_5`): version 6 only added the optional ``run.similarity``, so a
   version-5 report is a version-6 report without it, and it renders without the
   similarity section (its run's similarity table was spliced into report.html afterwards;
   ``similarity.json`` beside it still holds the numbers). Version 6 -> 7 is exact too
   (:func:`_from_version_6`: version 7 only added ``run.skipped_images``, empty for any
   earlier run, which could not skip an image). Versions before 5 are refused:
   each later version added numbers an older report does not hold;
3. it validates against the published JSON Schema (``report.schema.json``, shipped with the
   package) and then into the typed :class:`~compress_gate.report.schema.Report`;
4. it agrees with itself: each limit's ``passed`` is ``outcome == "pass"``, the outcome is
   the rule of DESIGN.md over the limits' outcomes (any ``fail`` -> ``fail``, else any
   ``not_enough_evidence`` -> ``not_enough_evidence``, else ``pass``), the verdict is
   ``pass`` exactly on a ``pass`` outcome, and a run section's summary says the same;
5. beside a ``manifest.json`` that lists ``report.json`` (a release bundle), its SHA-256
   matches the manifest's.

Any failure is an :class:`~compress_gate.errors.InputError` (exit 2) naming the file and
the first problem. The renderers are the gate's own, so a report.json of the current
version re-renders byte for byte, a run's included (its similarity table is part of it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_bytes, write_json
from compress_gate._outdir import check_output_dir, output_directory
from compress_gate.errors import InputError
from compress_gate.report.schema import SCHEMA_FILES, SCHEMA_VERSION, Report, as_report

__all__ = ["MIGRATIONS", "RENDERED", "load_report_json", "rerender"]

#: The files ``rerender`` writes into ``--out``.
RENDERED = ("report.json", "report.html", "MODEL_CARD.md", "junit.xml", "summary.md")


def _from_version_5(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-5 report as version 6: the same content with ``schema_version`` 6 (version 6 only
    added the optional ``run.similarity``, left out here: null, so nothing is rendered for it)."""
    return {**doc, "schema_version": 6}


def _from_version_6(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-6 report as version 7: version 7 only added ``run.skipped_images``, and a version-6
    run could not skip an image, so its list is empty: exact."""
    return {**doc, "schema_version": 7}


#: schema version v -> a function turning a report of version v into one of v + 1, exactly
#: (no number recomputed or guessed).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {5: _from_version_5, 6: _from_version_6}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (report.json writes an undefined number as null)")


def _read_json(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read the report ({err.strerror}). Give the path of a report.json "
                         "written by compress-gate.") from err
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: not a JSON file ({err}). Give the report.json that `compress-gate gate` or "
                         "`run` wrote.") from err
    if not isinstance(doc, dict) or isinstance(doc.get("schema_version"), bool) \
            or not isinstance(doc.get("schema_version"), int):
        raise InputError(f"{path}: not a compress-gate report.json (no integer `schema_version` at the top "
                         "level). Give the report.json that `compress-gate gate` or `run` wrote.")
    return raw, doc


def _migrated(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    version = doc["schema_version"]
    while version != SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None or version > SCHEMA_VERSION:
            raise InputError(f"{path}: a report.json of schema version {version}; this compress-gate reads "
                             f"schema version {SCHEMA_VERSION}, and no exact migration from {version} exists. "
                             f"Re-run the gate with this version (or render with the compress-gate that wrote it).")
        doc = step(doc)
        version = doc["schema_version"]
    return doc


def _validate_schema(doc: dict[str, Any], path: Path) -> None:
    """Validate ``doc`` against the published JSON Schema; InputError naming the first problems."""
    import jsonschema

    schema = json.loads(SCHEMA_FILES[0].read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = "; ".join(f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message[:200]}"
                             for e in errors[:3])
        raise InputError(f"{path}: does not follow the published report.json schema version {SCHEMA_VERSION} "
                         f"({problems}). Give an unedited report.json written by compress-gate.")


def _expected_outcome(outcomes: list[str]) -> str:
    if "fail" in outcomes:
        return "fail"
    return "not_enough_evidence" if "not_enough_evidence" in outcomes else "pass"


def _check_consistent(report: Report, path: Path) -> None:
    """InputError when the verdict, outcome and limits of ``report`` contradict each other."""
    problems = [f"limits[{i}] ({lim.name}): passed = {lim.passed} but outcome = {lim.outcome}"
                for i, lim in enumerate(report.limits) if lim.passed != (lim.outcome == "pass")]
    expected = _expected_outcome([lim.outcome for lim in report.limits])
    if report.outcome != expected:
        problems.append(f"outcome = {report.outcome}, but the limits' outcomes make it {expected}")
    if report.verdict != ("pass" if report.outcome == "pass" else "fail"):
        problems.append(f"verdict = {report.verdict} with outcome = {report.outcome}")
    summary = report.run.summary if report.run is not None else None
    if summary is not None and (summary.verdict, summary.outcome) != (report.verdict, report.outcome):
        problems.append(f"run.summary says {summary.verdict}/{summary.outcome}, the report "
                        f"{report.verdict}/{report.outcome}")
    if problems:
        raise InputError(f"{path}: the report contradicts itself ({'; '.join(problems[:3])}), so it was edited "
                         "after the gate wrote it. Re-render only an unedited report.json.")


def _check_manifest(path: Path, raw: bytes) -> None:
    """Beside a bundle manifest listing report.json: the file's SHA-256 must match it."""
    manifest_path = path.with_name("manifest.json")
    if path.name != "report.json" or not manifest_path.is_file():
        return
    try:
        listed = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]["report.json"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # not a bundle manifest that lists report.json
    actual = hashlib.sha256(raw).hexdigest()
    if actual != listed:
        raise InputError(f"{path}: its SHA-256 ({actual[:12]}…) differs from the one {manifest_path} records "
                         f"({str(listed)[:12]}…): the report was changed after the bundle was written. "
                         "Re-render only the bundle's own, unedited report.json.")


def load_report_json(path: str | os.PathLike[str]) -> Report:
    """Read, migrate where exact, validate and check a saved report.json; the typed report.

    The file must be JSON (no NaN/Infinity literals) with an integer ``schema_version``; another
    version is migrated through :data:`MIGRATIONS` or refused; the result must validate against
    the published JSON Schema and the typed report, agree with itself (limits, outcome,
    verdict, run summary) and, beside a bundle manifest listing it, match its SHA-256.
    InputError (exit 2) naming the file and the first problem otherwise.
    """
    return _load(Path(path))[0]


def _load(path: Path) -> tuple[Report, bytes | None]:
    """The checked report and the file's bytes (None when it was migrated: the bytes are another version)."""
    raw, doc = _read_json(path)
    migrated = doc["schema_version"] != SCHEMA_VERSION
    doc = _migrated(doc, path)
    _validate_schema(doc, path)
    report = as_report(doc, source=str(path))
    _check_consistent(report, path)
    _check_manifest(path, raw)
    return report, None if migrated else raw


def rerender(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> tuple[Report, dict[str, Path]]:
    """Check ``source`` (:func:`load_report_json`) and write :data:`RENDERED` as the new directory ``out``.

    ``report.json`` is copied byte for byte (written anew in this version when migrated); the others come from the gate's renderers.
    Returns the report and name -> final path.
    """
    from compress_gate.report import render_html, write_junit, write_model_card, write_summary_md

    source, out = Path(source), Path(out)
    inputs = {"report (REPORT_JSON)": source}
    check_output_dir(out, what="report output directory", inputs=inputs)   # before the report is read
    report, raw = _load(source)
    with output_directory(out, what="report output directory", inputs=inputs) as tmp:
        if raw is None:
            write_json(tmp / "report.json", report.to_json())
        else:
            write_bytes(tmp / "report.json", raw)
        render_html(report, tmp / "report.html")
        write_model_card(report, tmp / "MODEL_CARD.md")
        write_junit(report, tmp / "junit.xml")
        write_summary_md(report, tmp / "summary.md")
    return report, {name: out / name for name in RENDERED}

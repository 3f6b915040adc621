"""report.json as a typed tree: frozen pydantic models, built once by the gate, never mutated.

The JSON Schema of report.json is generated from :class:`Report`
(``Report.model_json_schema()``), shipped as ``compress_gate/report/report.schema.json``
and ``docs/report.schema.json``, and versioned by :data:`SCHEMA_VERSION`.
:data:`SCHEMA_SHA256` is the hash of that schema: a test fails when the models change
and the version is not bumped. Regenerate both files with
``python -m compress_gate.report.schema``.
The models are defined by part: the number convention (``_base``), inputs and limits
(``_limits``), the metrics, FairGRAPE and mitigation (``_metrics``), and what a run adds
(``_run``); every one is exported here.

Numbers follow the one JSON convention of :mod:`compress_gate._json`: ``null`` is an
undefined number (NaN), ``"inf"``/``"-inf"`` are infinities; a value undefined for a
stated reason is ``{"undefined": reason}``. The models hold values in that convention,
so ``report.model_dump(mode="json")`` is report.json as written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from compress_gate.errors import InputError
from compress_gate.report.schema._base import Interval, Number, Outcome, Undefined, ValueOrUndefined, _Node
from compress_gate.report.schema._limits import Inputs, LimitResult, UnitResult
from compress_gate.report.schema._metrics import (PER_ATTRIBUTE, AttributeMetrics, BAComparison, Balance, BATables,
                                                  CIESummary, Delta, Estimate, Estimates, FairGRAPESection,
                                                  Histogram, JointGroupRow, MitigatedFigures, MitigationSection,
                                                  ModelSummary, Metrics, OverrideSummary, Rates, SubgroupRow,
                                                  TeacherStudent, Uncovered)
from compress_gate.report.schema._run import (EngineCheck, Engines, LayerSimilarity, RunSection, RunSummary,
                                              SimilaritySection)

__all__ = ["SCHEMA_VERSION", "SCHEMA_SHA256", "SCHEMA_FILES", "Number", "Interval", "Undefined", "ValueOrUndefined",
           "Outcome", "Report", "as_report", "schema_text", "schema_sha256", "Inputs", "UnitResult", "LimitResult",
           "PER_ATTRIBUTE", "AttributeMetrics", "ModelSummary", "Delta", "Balance", "BAComparison", "BATables",
           "Rates", "SubgroupRow", "Histogram", "CIESummary", "Metrics", "Estimate", "TeacherStudent",
           "JointGroupRow", "FairGRAPESection", "Estimates", "OverrideSummary", "MitigatedFigures", "Uncovered",
           "MitigationSection", "EngineCheck", "Engines", "RunSummary", "RunSection", "LayerSimilarity",
           "SimilaritySection"]

SCHEMA_VERSION = 7
#: SHA-256 of :func:`schema_text` for :data:`SCHEMA_VERSION`; change both together.
SCHEMA_SHA256 = "c6ae85860e6408a10296d3848ca09e1876b855f3280705a572121aa76a9f7f31"


class Report(_Node):
    """report.json: the gate's verdict and every number behind it."""

    schema_version: Literal[7] = Field(description="the version of this schema")
    verdict: Literal["pass", "fail"] = Field(description="pass: release; fail: refused (see outcome)")
    outcome: Outcome = Field(description="pass; fail: a limit failed; not_enough_evidence: none failed, "
                                         "one or more undecided")
    created: str
    inputs: Inputs
    config: dict[str, Any] = Field(description="the gate section as validated (GateConfig)")
    judged: Literal["raw", "thresholds", "catalogue"] = Field(description="the predictions the limits judged "
                                                                          "(gate.judge)")
    scope: str = Field(description="which inputs the verdict holds for, in one sentence")
    limits: list[LimitResult]
    no_limits: bool = False
    note: str | None = None
    metrics: Metrics
    mitigation: MitigationSection | None = None
    engines: Engines | None = None
    benchmarks: dict[str, Any] | None = Field(default=None, description="compress_gate.engines.benchmark_models "
                                                                        "output, when measured")
    run: RunSection | None = None
    estimates: Estimates = Field(description="which numbers have intervals, which are point values only, "
                                             "which were not computed (only what a limit gates is resampled)")
    fairgrape: FairGRAPESection | None = Field(default=None, description="FairGRAPE's Table 1, AP per group and "
                                               "PIE; null when the data has no identity column or more "
                                               "than 64 joint groups")

    @property
    def passed(self) -> bool:
        """Whether the gate passed: ``outcome == "pass"``.

        One decision, said three ways for three readers: ``outcome`` is the decision (``pass``,
        ``fail``, ``not_enough_evidence``), ``verdict`` its release consequence (``pass`` only when
        the outcome is ``pass``) and this its bool; the gate derives the other two from ``outcome``
        (a report.json that contradicts itself is refused by :mod:`compress_gate.report.rerender`).
        """
        return self.outcome == "pass"

    def to_json(self) -> dict[str, Any]:
        """report.json's content as plain JSON types."""
        return self.model_dump(mode="json")

    def with_run(self, run: RunSection) -> Report:
        """A new report with the run's section (this one is not changed)."""
        return self.model_copy(update={"run": run})


def as_report(report: Report | Mapping[str, Any], *, source: str = "report") -> Report:
    """``report`` as a :class:`Report`; a mapping (e.g. a loaded report.json) is validated.

    Raises
    ------
    InputError
        The mapping does not follow the schema (the first problems are named by key path).
    """
    if isinstance(report, Report):
        return report
    try:
        return Report.model_validate(report)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:5])
        raise InputError(f"{source}: not a report.json of schema version {SCHEMA_VERSION} ({problems}). "
                         "Rewrite it with this version of compress-gate.") from err


def schema_text() -> str:
    """The JSON Schema of report.json, as written to report.schema.json (sorted keys, 2-space indent)."""
    schema = _without_defaults(Report.model_json_schema())
    schema["$id"] = f"https://compress-gate/report.schema.v{SCHEMA_VERSION}.json"
    schema["title"] = f"compress-gate report.json, schema version {SCHEMA_VERSION}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _without_defaults(node: Any) -> Any:
    """``node`` in one text whichever pydantic wrote it: without ``"additionalProperties": true``
    (JSON Schema's default, written out by some releases and not others), without an
    ``enum`` that only repeats the ``const`` beside it (pydantic < 2.8 writes both), and with a
    ``$ref`` that has siblings (a field's description) written beside them, not wrapped in a
    one-element ``allOf`` (pydantic < 2.9 wraps it)."""
    if isinstance(node, dict):
        wrapped = node.get("allOf")
        if isinstance(wrapped, list) and len(wrapped) == 1 and set(wrapped[0]) == {"$ref"}:
            node = {**{k: v for k, v in node.items() if k != "allOf"}, "$ref": wrapped[0]["$ref"]}
        return {k: _without_defaults(v) for k, v in node.items()
                if not (k == "additionalProperties" and v is True)
                and not (k == "enum" and "const" in node and v == [node["const"]])}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def schema_sha256() -> str:
    """SHA-256 of :func:`schema_text`."""
    return hashlib.sha256(schema_text().encode("utf-8")).hexdigest()


#: The shipped schema files: the package's (read by :mod:`compress_gate.report.rerender`) and the docs'.
SCHEMA_FILES = (Path(__file__).parents[1] / "report.schema.json",
                Path(__file__).parents[3] / "docs" / "report.schema.json")


"""The CIE audit (Hooker et al. 2020, "What do compressed deep neural networks forget?").

:func:`run_audit` trains or loads a population of dense models and one of compressed
models (seeds ``seed .. seed + population - 1``), finds the compression-identified
exemplars (modal CIEs) and ranks every audited sample by its Taxicab score, then writes
``audit.csv``, ``audit.html`` (the top-k as images with their labels, for a domain
expert) and ``audit.json`` into ``audit.output`` (default ``<run output>/audit``), built as
one new directory (:mod:`compress_gate._outdir`: checked before any training, replaced whole).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress_gate._outdir import output_directory
from compress_gate.config.inputs import recipe_inputs
from compress_gate.config.audit import AuditConfig
from compress_gate.config.run import RunConfig
from compress_gate.execution import Execution, check_execution

if TYPE_CHECKING:
    from compress_gate.audit.analysis import AuditFindings

__all__ = ["AuditResult", "run_audit", "summary_lines"]


@dataclass(frozen=True)
class AuditResult:
    """What :func:`run_audit` wrote (``paths``: csv, html, json) and its ``summary``."""

    paths: dict[str, Path]
    summary: dict[str, Any]
    findings: AuditFindings


def run_audit(config: RunConfig, audit: AuditConfig, *, say: Callable[[str], None] | None = None,
              execution: Execution = "local", address: str | None = None,
              recipe: Path | None = None) -> AuditResult:
    """Run the CIE audit; return the paths written and the summary.

    Trains or loads the dense and compressed populations, finds the modal CIEs, ranks every
    audited sample by its Taxicab score, and writes ``audit.csv``, ``audit.html`` (the top-k as
    images) and ``audit.json`` as one new output directory.

    ``execution="ray"`` trains the populations as Ray tasks on the cluster at ``address`` (or a
    local one): :func:`compress_gate.audit.population.obtain_populations`. It is checked
    before any work, as is the output directory: never one that is, holds or lies inside
    the ``recipe`` file or a path the recipe names.

    Raises
    ------
    InputError
        Bad data or prediction files, or a recipe whose teacher is a fixed checkpoint
        (see :func:`compress_gate.audit.population.obtain_populations`); an unknown execution,
        or ``"ray"`` without the ``[ray]`` extra.
    RuntimeFailure
        Training diverged.
    """
    from compress_gate.audit.analysis import analyse_populations
    from compress_gate.audit.outputs import render_audit_html, write_audit_csv, write_audit_json
    from compress_gate.audit.population import obtain_populations
    from compress_gate.data.sources import load_dataset

    execution = check_execution(execution, what="training the audit populations", address=address)
    started = time.perf_counter()
    say = say or (lambda message: None)
    out_dir = audit.output or config.output / "audit"
    with output_directory(out_dir, what="audit output directory", inputs=recipe_inputs(config, recipe)) as tmp:
        data = load_dataset(config.data, base_dir=config.output.parent)
        mask = data.mask(*audit.splits)
        dense, compressed = obtain_populations(config, audit, data, mask, say=say, execution=execution,
                                               address=address)
        audited = data.subset(mask)
        findings = analyse_populations(audited, dense.scores, compressed.scores, seed=config.seed)
        summary = {"n_samples": int(audited.n_samples), "splits": list(audit.splits),
                   "n_dense": len(dense.sources), "n_compressed": len(compressed.sources),
                   "dense_models": list(dense.sources), "compressed_models": list(compressed.sources),
                   "n_cie": int(findings.is_cie.sum()), "cie_share": float(findings.is_cie.mean()),
                   "top_k": audit.top_k, "seconds": time.perf_counter() - started}
        write_audit_csv(findings, tmp / "audit.csv")
        render_audit_html(findings, summary, tmp / "audit.html", inputs=audited.inputs, top_k=audit.top_k)
        write_audit_json(summary, findings, tmp / "audit.json")
    paths = {key: out_dir / f"audit.{key}" for key in ("csv", "html", "json")}
    return AuditResult(paths, summary, findings)


def summary_lines(result: AuditResult) -> list[str]:
    """What ``compress-gate audit`` prints: CIE count, accuracy on CIEs vs non-CIEs, files."""
    from compress_gate._format import fmt

    s = result.summary
    lines = [f"{s['n_cie']} modal CIEs among {s['n_samples']} samples ({s['n_dense']} dense, "
             f"{s['n_compressed']} compressed models, {s['seconds']:.0f} s)."]
    for population, acc in result.findings.accuracy.items():
        lines.append(f"  {population}: accuracy {fmt(acc['cie'], percent=True, reason='no CIEs')} on CIEs, "
                     f"{fmt(acc['non_cie'], percent=True, reason='no non-CIEs')} on non-CIEs")
    lines += [f"  {name}: {path}" for name, path in result.paths.items()]
    return lines

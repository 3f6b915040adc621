"""The ``compress-gate`` command line: thin Typer commands over the library.

Each command parses its arguments, calls one library function and renders the
result. Heavy modules (torch, onnx, onnxruntime, sparseml, deepsparse) are imported
inside the commands, so ``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

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
    """Map :class:`InputError` to exit 2 and :class:`RuntimeFailure` to exit 3, message only."""
    try:
        yield
    except InputError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INPUT_ERROR) from None
    except RuntimeFailure as err:
        err_console.print(f"[bold red]runtime failure:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_RUNTIME_FAILURE) from None


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


def _not_yet(command: str) -> None:
    err_console.print(f"[bold red]not yet:[/] `compress-gate {command}` is not implemented yet.")
    raise typer.Exit(EXIT_RUNTIME_FAILURE)


# --- run ---------------------------------------------------------------------------
@app.command()
def run(recipe: Path = typer.Argument(..., help="The run recipe (YAML).")) -> None:
    """Compress, export, benchmark and gate the model that RECIPE describes."""
    _not_yet("run")


# --- gate --------------------------------------------------------------------------
@app.command()
def gate() -> None:
    """Judge teacher and student predictions against limits; exit 0 pass, 1 refused, 2 bad input."""
    _not_yet("gate")


# --- bench -------------------------------------------------------------------------
@app.command()
def bench() -> None:
    """Benchmark ONNX models on DeepSparse and ONNX Runtime (CPU, and GPU when present)."""
    _not_yet("bench")


# --- predict -----------------------------------------------------------------------
@app.command()
def predict() -> None:
    """Run a release bundle (thresholds and overrides applied) on inputs."""
    _not_yet("predict")


# --- init --------------------------------------------------------------------------
@app.command()
def init() -> None:
    """Write a commented starter recipe."""
    _not_yet("init")


# --- audit -------------------------------------------------------------------------
@app.command()
def audit() -> None:
    """Find compression-identified exemplars (CIEs) for human review."""
    _not_yet("audit")


def main() -> None:
    """Console-script entry point."""
    app()

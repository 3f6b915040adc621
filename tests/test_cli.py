"""The CLI shell: instant help and version, light imports."""

import subprocess
import sys

from typer.testing import CliRunner

from compress_gate import __version__
from compress_gate.cli import app

runner = CliRunner()


def test_cli_import_is_light():
    code = ("import sys, compress_gate.cli; print(sorted(set(sys.modules) & "
            "{'torch', 'onnx', 'onnxruntime', 'sparseml', 'deepsparse'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"compress-gate {__version__}"


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "gate", "bench", "predict", "init", "audit"):
        assert command in result.stdout

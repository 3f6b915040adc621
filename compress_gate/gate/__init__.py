"""The bias gate: teacher vs student on every number, intervals, limits, verdict and its files."""

from compress_gate.gate._limits import relative_change
from compress_gate.gate.evaluate import GateResult, evaluate
from compress_gate.gate.outputs import run_gate, write_gate_outputs
from compress_gate.gate.schema import Report, RunSection

__all__ = ["GateResult", "Report", "RunSection", "evaluate", "relative_change", "run_gate", "write_gate_outputs"]

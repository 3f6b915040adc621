"""The bias gate: teacher vs student on every number, intervals, limits and the verdict, as the typed report.

The gate builds :class:`compress_gate.report.schema.Report` and writes no file: the files of
``compress-gate gate`` (report.json and its renderings) are written by :mod:`compress_gate.pipeline.gate`.
"""

from compress_gate.gate._limits import relative_change
from compress_gate.gate._sharded import judge_shards
from compress_gate.gate.evaluate import GateResult, evaluate

__all__ = ["GateResult", "evaluate", "judge_shards", "relative_change"]

"""Mitigation (Iofinova et al. §4): threshold calibration and teacher-uncertainty overrides."""

from compress_gate.mitigation.overrides import (
    Overrides,
    OverridesFile,
    apply_overrides,
    budget_count,
    overridden_rows,
    read_overrides,
    select_overrides,
    write_overrides,
)
from compress_gate.mitigation.thresholds import (
    ThresholdsFile,
    apply_thresholds,
    calibrate_thresholds,
    read_thresholds,
    write_thresholds,
)

__all__ = [
    "Overrides",
    "OverridesFile",
    "ThresholdsFile",
    "apply_overrides",
    "apply_thresholds",
    "budget_count",
    "calibrate_thresholds",
    "overridden_rows",
    "read_overrides",
    "read_thresholds",
    "select_overrides",
    "write_overrides",
    "write_thresholds",
]

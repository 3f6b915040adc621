"""Configuration: the run recipe and the gate limits, validated once with pydantic."""

from compress_gate.config._load import format_location, read_yaml, validate

__all__ = ["format_location", "read_yaml", "validate"]

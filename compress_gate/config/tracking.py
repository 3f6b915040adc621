"""The recipe's ``tracking:`` section: where ``run`` and ``sweep`` record themselves in MLflow.

Example::

    tracking:
      mlflow_uri: http://mlflow.internal:5000   # or --mlflow-uri; else $MLFLOW_TRACKING_URI
      experiment: face-attributes               # or --mlflow-experiment
      register: face-attributes-student         # on a pass: a new model version of this name
      alias: gated                              # the alias only a passing version receives

What is logged is listed in ``docs/reports.md`` ("MLflow").
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["TrackingConfig", "DEFAULT_EXPERIMENT", "DEFAULT_ALIAS"]

DEFAULT_EXPERIMENT = "compress-gate"
DEFAULT_ALIAS = "gated"


class TrackingConfig(BaseModel):
    """MLflow tracking of a run or sweep.

    Example: ``{mlflow_uri: "http://127.0.0.1:5000", experiment: faces, register: faces-student}``
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    mlflow_uri: str | None = Field(None, min_length=1)
    experiment: str = Field(DEFAULT_EXPERIMENT, min_length=1, max_length=500)
    #: the YAML key ``register`` (a pydantic model cannot have a field of that name)
    registered_model: str | None = Field(None, alias="register", min_length=1, max_length=256)
    alias: str = Field(DEFAULT_ALIAS, min_length=1, max_length=255)

    @field_validator("alias")
    @classmethod
    def _alias_is_a_name(cls, value: str) -> str:
        # MLflow refuses aliases like "v3" or "latest" (they read as version references)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", value) or re.fullmatch(r"(?i)v\d+|latest", value):
            raise ValueError(f"{value!r} is not a usable alias: letters, digits, '_' and '-', starting "
                             "with a letter, and not 'latest' or 'v<number>' (e.g. `alias: gated`)")
        return value

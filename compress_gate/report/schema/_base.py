"""The report's number convention and base node: ``Number`` (null = NaN, "inf"/"-inf"), ``Undefined``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

def _one_convention(value: Any) -> Any:
    """NaN -> None and +-inf -> "inf"/"-inf" (the JSON convention), whoever builds the model."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


Number = Annotated[float | Literal["inf", "-inf"] | None, BeforeValidator(_one_convention),
                   Field(description='a number; null = undefined (NaN); "inf"/"-inf" = infinite')]
Interval = tuple[Number, Number] | None
Outcome = Literal["pass", "fail", "not_enough_evidence"]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Undefined(_Node):
    """A value that is undefined for a stated reason: ``{"undefined": "N_test(A=1, I=0) = 3 < 10"}``."""

    undefined: str


#: A number, or why it is undefined (a table entry such as BA per (attribute, group)).
ValueOrUndefined = float | Undefined

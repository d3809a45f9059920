"""What every params.yaml section shares: the strict, frozen `Section` base model and the
constrained number and string types its fields use."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Probability = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    """Base for every params.yaml section: unknown keys and silent type coercion are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

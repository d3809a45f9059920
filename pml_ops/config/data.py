"""The `data` section: which data set, where it is written and the mirrors it is downloaded from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from pml_ops.config.base import NonEmptyStr, PositiveFloat, Section

DatasetName = Literal["mnist", "fashion-mnist"]


class DataParams(Section):
    dataset: DatasetName
    path: NonEmptyStr
    metrics: NonEmptyStr
    info: NonEmptyStr
    mirrors: dict[DatasetName, Annotated[list[NonEmptyStr], Field(min_length=1)]]
    timeout_s: PositiveFloat
    retries: Annotated[int, Field(ge=0, le=10)]

    @model_validator(mode="after")
    def _mirrors_for_the_dataset(self) -> DataParams:
        if self.dataset not in self.mirrors:
            raise ValueError(f"data.mirrors: no mirrors for data.dataset '{self.dataset}'")
        if Path(self.info) == Path(self.metrics):
            raise ValueError(f"data.info: must differ from data.metrics ({self.metrics})")
        return self

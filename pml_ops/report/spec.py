"""What a report holds: sections of Markdown text, tables and figures, plus the run's context.

The spec is plain data (pydantic models, strict, unknown keys rejected), so a stage can build
it in Python or load it from YAML/JSON with `Report.model_validate(mapping)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Cell = str | int | float | bool | None


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Spec):
    """A PNG file and its caption. A relative path is resolved against the report's `base_dir`."""

    path: Path
    caption: str


class Table(_Spec):
    """Rows of named cells shown in `columns` order.

    `notes` explain columns (shown under the table); `formats` give a format spec per column
    (e.g. ".2f"); floats default to 4 significant digits. A missing cell shows as an em dash.
    """

    caption: str
    columns: list[str] = Field(min_length=1)
    rows: list[dict[str, Cell]]
    notes: dict[str, str] = Field(default_factory=dict)
    formats: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_columns(self) -> Table:
        known = set(self.columns)
        for index, row in enumerate(self.rows):
            unknown = set(row) - known
            if unknown:
                raise ValueError(f"row {index} has cells for unknown column(s) {sorted(unknown)}")
        for key in (*self.notes, *self.formats):
            if key not in known:
                raise ValueError(f"note or format for unknown column '{key}'")
        return self


class Section(_Spec):
    title: str = Field(min_length=1)
    text: str = ""  # Markdown
    tables: list[Table] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)


class Report(_Spec):
    """The whole report. `environment` (name -> value) and `stage_times` (stage -> seconds)
    become the last two sections."""

    title: str = Field(min_length=1)
    sections: list[Section]
    environment: dict[str, str] = Field(default_factory=dict)
    stage_times: dict[str, float] = Field(default_factory=dict)

    def all_sections(self) -> list[Section]:
        extra: list[Section] = []
        if self.environment:
            rows: list[dict[str, Any]] = [{"item": k, "value": v} for k, v in self.environment.items()]
            extra.append(
                Section(title="Environment", tables=[Table(caption="", columns=["item", "value"], rows=rows)])
            )
        if self.stage_times:
            rows = [{"stage": k, "wall time (s)": v} for k, v in self.stage_times.items()]
            rows.append({"stage": "sum of the stages", "wall time (s)": sum(self.stage_times.values())})
            table = Table(
                caption="Each stage's own wall time (its metrics file); `pml-ops repro` runs independent "
                "stages side by side, so the run itself can take less than their sum.",
                columns=["stage", "wall time (s)"],
                rows=rows,
                formats={"wall time (s)": ".1f"},
            )
            extra.append(Section(title="Stage wall times", tables=[table]))
        return [*self.sections, *extra]

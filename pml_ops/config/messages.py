"""Pydantic's validation errors as messages that name each bad key by its dotted params.yaml path."""

from __future__ import annotations

from pydantic import ValidationError


def format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: {error.error_count()} invalid setting(s):"]
    for item in error.errors():
        key = format_location(item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'")
        elif item["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        elif not key:  # a check across sections: its message names the keys
            lines.append(f"  - {item['msg'].removeprefix('Value error, ')}")
        elif isinstance(item["input"], dict):  # a check across a section's keys: no value to show
            lines.append(f"  - '{key}': {item['msg']}")
        else:
            lines.append(f"  - '{key}': {item['msg']} (got {item['input']!r})")
    return "\n".join(lines)

"""Reading params.yaml: YAML that refuses duplicate keys (`load_yaml`), then validation into
`Params` (`parse_params`, `load_params`) that raises ConfigError naming every bad key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pml_ops.config.messages import format_validation_error
from pml_ops.config.params import DEFAULT_PARAMS_FILE, Params, parse_model
from pml_ops.core.errors import ConfigError

# libyaml's parser where PyYAML was built with it (the wheels are): ~10x faster than the pure
# Python one on dvc.lock and params.yaml, which every stage reads.
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _duplicate_keys(node: yaml.Node, path: str = "") -> list[str]:
    """Every key that appears twice in one mapping, with both line numbers (1-based)."""
    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            dotted = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in first_line:
                found.append(f"'{dotted}' on line {line} (first on line {first_line[key]})")
            else:
                first_line[key] = line
            found.extend(_duplicate_keys(value_node, dotted))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, f"{path}.{index}"))
    return found


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML, refusing duplicate keys (YAML lets the last one win silently)."""
    try:
        root = yaml.compose(text, Loader=YAML_LOADER)
        duplicates = [] if root is None else _duplicate_keys(root)
        if not duplicates:
            return yaml.load(text, Loader=YAML_LOADER)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    raise ConfigError(f"{source}: duplicate key(s), the last would silently win: " + "; ".join(duplicates))


def parse_params(raw: Any, source: str = DEFAULT_PARAMS_FILE) -> Params:
    """Validate an already-loaded mapping; raise ConfigError naming every bad key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return parse_model(raw).model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(source, error)) from None


def load_params(path: str | os.PathLike[str] = DEFAULT_PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    file = Path(path)
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{file}: parameters file not found (run from the project root)") from None
    return parse_params(load_yaml(text, str(file)), source=str(file))

"""Params profiles: named sets of dotted params.yaml keys (profiles/smoke.yaml), applied to the
params in place or handed to `dvc exp run -S`.

    python -m pml_ops.config.profiles apply profiles/smoke.yaml [params.yaml]   # edit params.yaml
    python -m pml_ops.config.profiles set-args profiles/smoke.yaml              # key=value lines for -S

Every key must already exist in the params (a profile cannot add knobs, and a key renamed in
params.yaml fails here with its name rather than being silently ignored)."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import yaml

from pml_ops.config import DEFAULT_PARAMS_FILE, parse_params
from pml_ops.core.errors import ConfigError


def load_profile(path: str | Path) -> dict[str, Any]:
    """{dotted key: value} from a profile file."""
    try:
        profile = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"profile {path}: cannot read it ({error})") from None
    if not isinstance(profile, dict) or not all(isinstance(key, str) for key in profile):
        raise ConfigError(f"profile {path}: expected a mapping of dotted params keys to values")
    return profile


def apply_profile(params: dict[str, Any], profile: dict[str, Any], source: str = "profile") -> dict[str, Any]:
    """A copy of `params` with the profile's values set; the result is validated like
    params.yaml. Unknown keys raise ConfigError naming the key."""
    changed = copy.deepcopy(params)
    for dotted, value in profile.items():
        *parents, leaf = dotted.split(".")
        node = changed
        for depth, key in enumerate(parents):
            if not isinstance(node, dict) or key not in node:
                raise ConfigError(f"{source}: '{dotted}': params have no '{'.'.join(parents[: depth + 1])}'")
            node = node[key]
        if not isinstance(node, dict) or leaf not in node:
            raise ConfigError(f"{source}: '{dotted}': params have no such key")
        node[leaf] = value
    parse_params(changed)
    return changed


def set_param_args(profile: dict[str, Any]) -> list[str]:
    """`dvc exp run -S` overrides, one `key=value` per entry (values in JSON, which DVC's
    override grammar reads: numbers, null, strings, lists)."""
    return [f"{key}={json.dumps(value)}" for key, value in profile.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pml_ops.config.profiles", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    apply = commands.add_parser("apply", help="write the profile's values into a params file")
    apply.add_argument("profile")
    apply.add_argument("params", nargs="?", default=DEFAULT_PARAMS_FILE)
    args_parser = commands.add_parser("set-args", help="print key=value lines for dvc exp run -S")
    args_parser.add_argument("profile")
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile)
        if args.command == "set-args":
            print("\n".join(set_param_args(profile)))
            return
        path = Path(args.params)
        params = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump(apply_profile(params, profile, args.profile), sort_keys=False))
    except ConfigError as error:
        raise SystemExit(f"pml-ops: error: {error}") from None


if __name__ == "__main__":
    main()

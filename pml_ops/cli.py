"""The `pml-ops` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pml_ops import __version__
from pml_ops.config import DEFAULT_PARAMS_FILE, load_params
from pml_ops.errors import PmlOpsError
from pml_ops.stage import EXIT_USER_ERROR


def _validate(args: argparse.Namespace) -> int:
    load_params(args.params)
    print(f"{args.params}: ok")
    return 0


def _ui(args: argparse.Namespace) -> int:
    from pml_ops.tracking import tracking_uri

    uri = tracking_uri(load_params(args.params).tracking)
    command = [
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    print(f"pml-ops: MLflow UI on http://{args.host}:{args.port} (store: {uri})", file=sys.stderr)
    os.execvp(command[0], command)
    return 0  # not reached: execvp replaces this process


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pml-ops",
        description="Reproducible, tracked probabilistic ML. Stages run through `dvc repro`; "
        "these commands help around them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--params", default=DEFAULT_PARAMS_FILE, help="parameters file (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check params.yaml and report every bad key")
    validate.set_defaults(handler=_validate)

    ui = commands.add_parser("ui", help="open the MLflow UI on the project's tracking store")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    ui.add_argument("--port", type=int, default=5000, help="port (default: %(default)s)")
    ui.set_defaults(handler=_ui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except PmlOpsError as error:
        print(f"pml-ops: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())

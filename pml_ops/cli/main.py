"""The `pml-ops` command line."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from pml_ops import __version__
from pml_ops.cli.doctor import doctor
from pml_ops.config import DEFAULT_PARAMS_FILE, load_params
from pml_ops.core.errors import PmlOpsError
from pml_ops.core.resources import retain_freed_memory, usable_cpus
from pml_ops.density.families import check_models
from pml_ops.runtime.parallel_repro import DEFAULT_TARGET, plan, run_parallel
from pml_ops.runtime.stage import (
    EXIT_CODES,
    EXIT_USER_ERROR,
    ignore_stops,
    install_stop_handlers,
    kept,
    stop_signal,
    stopped_line,
)
from pml_ops.tracking import remote
from pml_ops.tracking.store import tracking_uri


def _validate(args: argparse.Namespace) -> int:
    check_models(load_params(args.params))  # every model's network builds (tuned files included)
    print(f"{args.params}: ok")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    return doctor(Path(args.params))


def _ensure_port_free(host: str, port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            raise PmlOpsError(
                f"cannot listen on {host}:{port} ({error.strerror}); "
                "another MLflow UI may be running there: choose a free port with --port"
            ) from None


def _ui(args: argparse.Namespace) -> int:
    uri = tracking_uri(load_params(args.params).tracking)
    _ensure_port_free(args.host, args.port)
    command = [
        sys.executable,  # the interpreter pml-ops runs in: works without an activated venv
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
    ]
    print(f"pml-ops: MLflow UI on http://{args.host}:{args.port} (store: {uri})", file=sys.stderr)
    os.execvp(command[0], command)
    return 0  # not reached: execvp replaces this process


def _tune(args: argparse.Namespace) -> int:
    # deferred: the tuning package loads Optuna, matplotlib, SQLAlchemy, MLflow and torch, ~4 s at
    # import; the other commands never need them
    from pml_ops.tuning.command import Overrides, describe, tune
    from pml_ops.tuning.models import DensityTask

    install_stop_handlers()  # SIGTERM stops the study as Ctrl-C does
    retain_freed_memory()  # as in every stage (pml_ops/core/resources.py)
    params = load_params(args.params)
    overrides = Overrides(
        trials=args.trials,
        timeout_s=args.timeout,
        workers=args.workers,
        storage=args.storage,
        study_name=args.study_name,
        promote=args.promote,
    )
    summary = tune(params, DensityTask(args.model, params), overrides)
    for line in describe(summary, params.tuning.best_params_file):
        print(f"tune: {line}")
    return 0


def _repro(args: argparse.Namespace) -> int:
    install_stop_handlers()  # SIGTERM stops the running stages as Ctrl-C does
    root = Path.cwd()
    stages = plan(root, args.targets or [DEFAULT_TARGET], force=args.force)
    if not stages.upstream:
        print("pml-ops repro: every stage is up to date")
        return 0
    if args.dry:
        for name, deps in stages.upstream.items():
            last = stages.seconds.get(name)
            took = f"{last:.0f} s last time" if last is not None else "not run before"
            print(f"{name} ({took}) after: {', '.join(deps) or '-'}")
        return 0
    run_parallel(root, stages, args.jobs or usable_cpus(), force=args.force)
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {port}")
    return port


def _remote(args: argparse.Namespace) -> int:
    project = Path.cwd()
    if args.action == "set":
        env = dict(os.environ)
        if args.url:
            env[remote.URL_ENV] = args.url
        if args.endpoint_url:
            env[remote.ENDPOINT_ENV] = args.endpoint_url
        store = remote.from_environment(env)
        for command in remote.configure_dvc(store, project, local=not args.project):
            print(" ".join(command))
        where = ".dvc/config (commit it)" if args.project else ".dvc/config.local (this checkout)"
        print(f"pml-ops: default DVC remote '{remote.REMOTE_NAME}' = {store.dvc_url}, in {where}")
    print(f"pml-ops: {remote.check_default_remote(project)}")
    return 0


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


# The parser's subcommands; each `_add_<command>` adds one.
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _add_validate(commands: _Commands) -> None:
    command = commands.add_parser(
        "validate",
        help="check params.yaml and report every bad key",
        description="Parse and validate the parameters file the way every stage does before it "
        "works. Prints every missing, unknown, mistyped or out-of-range key by its dotted name; "
        "exit status 2 if any.",
    )
    command.set_defaults(handler=_validate)


def _add_doctor(commands: _Commands) -> None:
    command = commands.add_parser(
        "doctor",
        help="check Python, torch and the device, the MLflow store, DVC and the data",
        description="One line per check: Python version; torch version and device (CUDA or CPU); "
        "params.yaml valid; MLflow store reachable ($MLFLOW_TRACKING_URI or tracking.uri); DVC "
        "repository and default remote; data/mnist.npz present and valid. Each problem comes "
        "with a fix. Exit status 1 if an essential check fails (✗); warnings (!) do not fail.",
    )
    command.set_defaults(handler=_doctor)


def _add_ui(commands: _Commands) -> None:
    command = commands.add_parser(
        "ui",
        help="open the MLflow UI on the project's tracking store",
        description="Start `mlflow ui` on the store every stage logs to ($MLFLOW_TRACKING_URI, else "
        "tracking.uri in params.yaml), bound to localhost only. Stop it with Ctrl-C.",
    )
    command.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    command.add_argument("--port", type=_port, default=5000, help="port, 1-65535 (default: %(default)s)")
    command.add_argument(
        "--workers", type=int, default=1, help="server processes; one serves one person (default: 1)"
    )
    command.set_defaults(handler=_ui)


def _add_tune(commands: _Commands) -> None:
    command = commands.add_parser(
        "tune",
        help="tune the VAE or CVAE architecture with Optuna (continues an existing study)",
        description="Add trials to an Optuna study of the model's architecture, scored by the "
        "validation ELBO on held-out training images. Settings default to params.yaml's `tuning`; "
        "workers on several machines share a study through one RDB --storage URL.",
    )
    command.add_argument("--model", required=True, choices=["cvae", "vae"])
    command.add_argument("--trials", type=_positive(int), help="trials to add (default: tuning.trials)")
    command.add_argument(
        "--timeout", type=_positive(float), metavar="SECONDS", help="start no trial after this long"
    )
    command.add_argument("--workers", type=_positive(int), help="worker processes (default: tuning.workers)")
    command.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db")
    command.add_argument("--study-name", help="default: tuning.<model>.study_name")
    command.add_argument(
        "--promote",
        action="store_true",
        help="write the study's best to the best-params file even if it does not beat the "
        "recorded one (by default only a better validation ELBO replaces it)",
    )
    command.set_defaults(handler=_tune)


def _add_repro(commands: _Commands) -> None:
    command = commands.add_parser(
        "repro",
        help="`dvc repro` with independent stages side by side, one core each",
        description="Reproduce the pipeline as `dvc repro TARGETS` does (default: dvc.yaml), but "
        "with up to --jobs stages at once, each a `dvc repro --single-item` pinned to cores of its "
        "own, so that `density.cpu_threads: auto` gives each one torch thread per core. Stages "
        "start once the stages they depend on have finished, the longest chain (by last run's "
        "wall_time_s) first. dvc.lock and the cache end as after `dvc repro`. If a stage fails, "
        "the running ones finish, nothing new starts, and the exit status is 2.",
    )
    command.add_argument("targets", nargs="*", help="stages or dvc.yaml files (default: dvc.yaml)")
    command.add_argument(
        "-j", "--jobs", type=_positive(int), help="stages at once (default: the usable cores)"
    )
    command.add_argument("-f", "--force", action="store_true", help="rerun stages even if unchanged")
    command.add_argument("--dry", action="store_true", help="list the stages to run and stop")
    command.set_defaults(handler=_repro)


def _add_remote(commands: _Commands) -> None:
    command = commands.add_parser(
        "remote",
        help="point DVC at the team's S3-compatible bucket, or check that it answers",
        description="`set [URL]`: make `shared` (URL/dvc; URL defaults to $PML_OPS_REMOTE_URL, "
        "the endpoint to $AWS_ENDPOINT_URL) the default DVC remote, downloads verified by hash, "
        "then check it. `check`: the default remote answers within seconds with the credentials "
        "of the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE). Credentials "
        "are never written. Exit status 2 with the fix when the store does not answer.",
    )
    command.add_argument("action", choices=["set", "check"])
    command.add_argument("url", nargs="?", help="s3://BUCKET/PREFIX (set only)")
    command.add_argument("--endpoint-url", help="S3 endpoint of a non-AWS server, e.g. http://minio:9000")
    command.add_argument(
        "--project",
        action="store_true",
        help="write .dvc/config (to commit for the team) instead of .dvc/config.local",
    )
    command.set_defaults(handler=_remote)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pml-ops",
        description="Reproducible, tracked probabilistic ML. Stages run through `dvc repro`; "
        "these commands help around them.",
        epilog="Start with `pml-ops doctor`, then `dvc repro`, then `pml-ops ui` to compare runs. "
        "`pml-ops COMMAND --help` explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--params", default=DEFAULT_PARAMS_FILE, help="parameters file (default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_validate, _add_doctor, _add_ui, _add_tune, _add_repro, _add_remote):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except PmlOpsError as error:
        print(f"pml-ops: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM as `Stopped`
        ignore_stops()
        signum = stop_signal(error)
        assert signum is not None
        print(stopped_line(signum, kept()), file=sys.stderr)
        return EXIT_CODES[signum]


if __name__ == "__main__":
    sys.exit(main())

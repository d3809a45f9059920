"""Run a stage entry point: validate params first, turn user errors into one-line exits, and stop
cleanly.

A stage stopped by SIGINT (Ctrl-C) or SIGTERM (`kill`, a container stop) ends its MLflow run as
KILLED, prints one line saying what it kept (checkpoints written, trials finished) and exits with
130 or 143, without a traceback. A stage also dies with the `dvc repro` that started it: the
kernel sends it SIGTERM when its parent dies (Linux `PR_SET_PDEATHSIG`), and when that parent is
the shell DVC runs the command in, a watchdog notices the shell being orphaned. So no stage keeps
writing outputs after DVC is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pml_ops.config import DEFAULT_PARAMS_FILE, Params, load_params
from pml_ops.core.errors import PmlOpsError
from pml_ops.core.resources import retain_freed_memory

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_CODES: dict[int, int] = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}
PR_SET_PDEATHSIG = 1
SHELLS = {"sh", "dash", "bash", "zsh", "fish", "ksh"}
WATCH_INTERVAL_S = 0.5

_kept: list[str] = []


class Stopped(KeyboardInterrupt):
    """SIGTERM arrived. A KeyboardInterrupt (as SIGINT raises), so that everything that cleans
    up after Ctrl-C (Optuna failing the running trial, `except Exception` not swallowing it)
    does the same for SIGTERM."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_requested: list[tuple[int, float]] = []  # the stop signals received, with when
_cleaning_up = False
SAME_STOP_S = 1.0  # a second signal this soon after the first is the same stop (a group's SIGINT
# followed by the command's SIGTERM to its workers): it must not interrupt the first one's cleanup


def _stop_exception(signum: int) -> KeyboardInterrupt:
    return Stopped(signum) if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_stop_signal(signum: int, frame: object) -> None:
    now = time.monotonic()
    _requested.append((signum, now))
    if _cleaning_up or (now - _requested[0][1] < SAME_STOP_S and len(_requested) > 1):
        return
    raise _stop_exception(_requested[0][0])


def check_stop() -> None:
    """Raise the stop again if a signal arrived but its exception was lost: raised inside a
    `__del__` or a callback that swallows it. Long loops call this at safe points (each epoch)."""
    if _requested and not _cleaning_up:
        raise _stop_exception(_requested[0][0])


def _unraisable(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):  # a stop, seen by check_stop
            hook(unraisable)

    return quiet


def stop_signal(error: BaseException) -> int | None:
    """The signal behind an interruption (SIGINT or SIGTERM), or None for any other error."""
    if isinstance(error, Stopped):
        return error.signum
    if isinstance(error, KeyboardInterrupt):
        return signal.SIGINT
    return None


def note_kept(what: str) -> None:
    """Record something an interrupted stage leaves behind, for its closing line."""
    _kept.append(what)


def kept() -> list[str]:
    return list(_kept)


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state letter


def _watch_grandparent(shell: int, dvc: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if _parent_of(shell) != dvc:  # DVC died: the shell was re-parented (or is gone)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def set_parent_death_signal(signum: int, parent: int | None = None) -> bool:
    """Have the kernel send `signum` to this process when `parent` (default: the current parent)
    dies (Linux `PR_SET_PDEATHSIG`; False elsewhere or if refused). If the parent is already gone,
    the signal is sent now. The kernel's "parent" is the thread that forked this process: fork
    from a thread that outlives the child (the main thread, or one that waits for it)."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the call took effect
        os.kill(os.getpid(), signum)
    return True


def die_with_parent() -> None:
    """SIGTERM this process when the process that started it dies (Linux; elsewhere a no-op)."""
    parent = os.getppid()
    if not set_parent_death_signal(signal.SIGTERM, parent):
        return
    try:
        name = Path(f"/proc/{parent}/comm").read_text().strip()
    except OSError:
        return
    grandparent = _parent_of(parent)
    if name in SHELLS and grandparent not in (None, 0, 1):
        threading.Thread(target=_watch_grandparent, args=(parent, grandparent), daemon=True).start()


class _DropStopTracebacks(logging.Filter):
    """Drops a record that carries a stop (KeyboardInterrupt or `Stopped`) as its exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[0] if record.exc_info else None
        return not (kind is not None and issubclass(kind, KeyboardInterrupt))


_DROP_STOP_TRACEBACKS = _DropStopTracebacks()


def _quiet_pool_stops() -> None:
    """SQLAlchemy's connection pool logs "Exception during reset or similar" with the traceback
    when a stop lands while it resets a connection (MLflow's and Optuna's SQL stores), then lets
    the stop propagate; a stop is reported in one line. Each pool class logs to its own logger
    (`sqlalchemy.pool.impl.QueuePool`, ...) and a logger's filter does not see its children's
    records, so the filter goes on every pool class's logger."""
    # deferred: ~0.2 s at import; `pml-ops` imports this module for every command, and only tune,
    # repro and the stages install the handlers
    from sqlalchemy import pool

    classes: list[type] = [pool.Pool]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        logger = logging.getLogger(f"{cls.__module__}.{cls.__name__}")
        if _DROP_STOP_TRACEBACKS not in logger.filters:
            logger.addFilter(_DROP_STOP_TRACEBACKS)


def install_stop_handlers() -> None:
    """SIGTERM raises `Stopped` in the main thread, as SIGINT raises KeyboardInterrupt; both are
    remembered for `check_stop`, and one raised where Python can only print it (in a `__del__`,
    or in SQLAlchemy's pool, which logs it) is not printed."""
    signal.signal(signal.SIGTERM, _on_stop_signal)
    signal.signal(signal.SIGINT, _on_stop_signal)
    if not getattr(sys.unraisablehook, "pml_ops", False):
        sys.unraisablehook = _unraisable(sys.unraisablehook)
        sys.unraisablehook.pml_ops = True  # type: ignore[attr-defined]
    _quiet_pool_stops()


def ignore_stops() -> None:
    """While cleaning up after a stop, a second Ctrl-C or SIGTERM must not interrupt the cleanup."""
    global _cleaning_up
    _cleaning_up = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def stopping_run(run_id: str) -> Iterator[None]:
    """End the active MLflow run `run_id` as FINISHED, or KILLED if the block is stopped by a
    signal (tagged with the signal), or FAILED if it raises."""
    import mlflow  # deferred: ~1.3 s at import; prepare, compare and most `pml-ops` commands never log

    try:
        yield
    except BaseException as error:
        signum = stop_signal(error)
        if signum is not None:
            ignore_stops()
            mlflow.set_tag("pml_ops.stopped_by", signal.Signals(signum).name)
            mlflow.end_run("KILLED")
            note_kept(f"MLflow run {run_id} (KILLED)")
        else:
            mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")


def _checkpoints_since(directory: Path, started: float) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(
        str(path) for path in directory.iterdir() if path.is_file() and path.stat().st_mtime >= started
    )


def stopped_line(signum: int, kept: list[str]) -> str:
    what = "; ".join(kept) if kept else "nothing (no output is written until a stage finishes)"
    return f"pml-ops: stopped by {signal.Signals(signum).name}; kept: {what}"


def run_stage(stage: Callable[[Params], None], params_file: str = DEFAULT_PARAMS_FILE) -> None:
    """Load and validate params.yaml, then run `stage`; never end in a bare traceback for
    errors a user can fix or for a stop signal."""
    die_with_parent()
    install_stop_handlers()
    retain_freed_memory()
    started = time.time()
    params = None
    try:
        params = load_params(params_file)
        stage(params)
    except PmlOpsError as error:
        print(f"pml-ops: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt as error:  # SIGINT, or SIGTERM as `Stopped`
        ignore_stops()
        signum = stop_signal(error)
        assert signum is not None
        left = kept()
        if params is not None:
            left += [
                f"checkpoint {path}"
                for path in _checkpoints_since(Path(params.density.checkpoint_dir), started)
            ]
        print(stopped_line(signum, left), file=sys.stderr)
        sys.exit(EXIT_CODES[signum])

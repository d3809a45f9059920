"""Kill a command with SIGKILL at a chosen moment, for tests of what an interruption leaves.

Generic: `kill_when` takes any command (`dvc repro STAGE`, a stage script, ...) and any
readiness predicate (a server saw a request, a file appeared, a log line was printed, ...).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def kill_when(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    ready: Callable[[], bool],
    timeout_s: float = 120.0,
    poll_s: float = 0.05,
) -> str:
    """Start `cmd` in its own process group; once `ready()` holds, SIGKILL the whole group.

    The group takes DVC and the stage process it started down together, as an OOM killer or a
    lost machine would. Returns the command's output so far. Fails if the command ends before
    it could be interrupted or `ready()` never holds within `timeout_s`.
    """
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        try:
            while not ready():
                if proc.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"{cmd} ended ({proc.returncode}) before the kill:\n{log.read()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{cmd}: not ready for the kill within {timeout_s} s")
                time.sleep(poll_s)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _reap_group(proc.pid)
        assert proc.returncode == -signal.SIGKILL, f"{cmd} exited {proc.returncode}, not killed"
        log.seek(0)
        return log.read()


def _reap_group(pgid: int, timeout_s: float = 10.0) -> None:
    """Wait until no process of the killed group is left (children die a moment later)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process group {pgid} survived SIGKILL")


def files_under(directory: Path) -> set[str]:
    """Every file below `directory`, relative, hidden ones included."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}

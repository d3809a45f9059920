"""Run a command on given cores and have it die with the process that started it:

    python -m pml_ops.runtime.pinned 0,1 -- COMMAND [ARG ...]

sets this process's CPU affinity to cores 0 and 1 (Linux; elsewhere the command runs unpinned),
asks the kernel to SIGTERM it when its parent dies, then replaces itself with COMMAND, which keeps
both (an affinity and a parent-death signal survive exec). `pml-ops repro` starts each stage so.
"""

from __future__ import annotations

import os
import signal
import sys

from pml_ops.runtime.stage import set_parent_death_signal


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m pml_ops.runtime.pinned CORE[,CORE...] -- COMMAND [ARG ...]")
    cores = {int(core) for core in argv[0].split(",")}
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    set_parent_death_signal(signal.SIGTERM)
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])

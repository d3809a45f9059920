"""Which pipeline stages to start next, and on which cores: a list scheduler over the stage graph.

Pure bookkeeping (no processes, no DVC), so the policy is tested on its own. A stage may start
once every stage it depends on has finished. Ready stages start longest critical path first (a
stage's own expected seconds plus its longest chain of dependents: HEFT's upward rank), so the
long training chains begin early and the tail of the run is short. Each stage gets
`cores_per_stage` cores of its own (its CPU affinity), except a stage that is the only one ready
while nothing runs (every stage still waiting needs it first), which gets every core.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def upward_rank(upstream: Mapping[str, Iterable[str]], seconds: Mapping[str, float]) -> dict[str, float]:
    """Per stage: its expected seconds plus the longest expected chain of stages after it."""
    downstream: dict[str, list[str]] = {name: [] for name in upstream}
    for name, deps in upstream.items():
        for dep in deps:
            downstream[dep].append(name)
    rank: dict[str, float] = {}
    for name in reversed(list(graphlib.TopologicalSorter(upstream).static_order())):
        rank[name] = seconds.get(name, 0.0) + max((rank[after] for after in downstream[name]), default=0.0)
    return rank


@dataclass
class Scheduler:
    """Stages `upstream` names (each with the stages it needs first) on `cores`, at
    most `max_parallel` at once.

    `start_next()` returns the stages to launch now with their cores; call `finished(name)` when
    one ends (successfully or not: a failed stage's dependents never become ready, and after
    `halt()` nothing new starts)."""

    upstream: Mapping[str, Iterable[str]]
    seconds: Mapping[str, float]
    cores: list[int]
    max_parallel: int
    cores_per_stage: int = 1
    _waiting: set[str] = field(init=False)
    _done: set[str] = field(init=False, default_factory=set)
    _running: dict[str, list[int]] = field(init=False, default_factory=dict)
    _rank: dict[str, float] = field(init=False)
    _halted: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if self.max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {self.max_parallel}")
        if not self.cores:
            raise ValueError("no cores to schedule on")
        for name, deps in self.upstream.items():
            unknown = set(deps) - set(self.upstream)
            if unknown:
                raise ValueError(f"stage {name!r} depends on unknown stages {sorted(unknown)}")
        self._rank = upward_rank(self.upstream, self.seconds)  # raises graphlib.CycleError on a cycle
        self._waiting = set(self.upstream)

    @property
    def running(self) -> dict[str, list[int]]:
        return dict(self._running)

    @property
    def pending(self) -> set[str]:
        """Stages not started yet."""
        return set(self._waiting)

    def ready(self) -> list[str]:
        """Stages whose upstream stages all finished, longest critical path first."""
        ready = [name for name in self._waiting if set(self.upstream[name]) <= self._done]
        return sorted(ready, key=lambda name: (-self._rank[name], name))

    def start_next(self) -> list[tuple[str, list[int]]]:
        if self._halted:
            return []
        free = [core for core in self.cores if all(core not in held for held in self._running.values())]
        launches: list[tuple[str, list[int]]] = []
        ready = self.ready()
        # Nothing running and one stage ready: every stage still waiting needs it first.
        alone = not self._running and len(ready) == 1
        for name in ready:
            if len(self._running) >= self.max_parallel or not free:
                break
            take = len(free) if alone else min(self.cores_per_stage, len(free))
            granted, free = free[:take], free[take:]
            self._waiting.discard(name)
            self._running[name] = granted
            launches.append((name, granted))
        return launches

    def finished(self, name: str, succeeded: bool = True) -> None:
        self._running.pop(name)
        if succeeded:
            self._done.add(name)

    def halt(self) -> None:
        """Start nothing more (a stage failed or the run was stopped); running stages go on."""
        self._halted = True

    @property
    def complete(self) -> bool:
        return not self._running and (self._halted or not self._waiting or not self.ready())

"""The stage scheduler behind `pml-ops repro` (pml_ops/runtime/schedule.py): order, cores, failures."""

from __future__ import annotations

import graphlib

import pytest

from pml_ops.runtime.schedule import Scheduler, upward_rank

# The pipeline's shape: prepare, then two trainings each with its evaluation, then a report.
PIPELINE = {
    "prepare": [],
    "gp": [],
    "train@a": ["prepare"],
    "train@b": ["prepare"],
    "evaluate@a": ["train@a"],
    "evaluate@b": ["train@b"],
    "report": ["evaluate@a", "evaluate@b", "gp"],
}
SECONDS = {
    "prepare": 1,
    "gp": 5,
    "train@a": 100,
    "train@b": 200,
    "evaluate@a": 50,
    "evaluate@b": 10,
    "report": 2,
}


def drain(scheduler: Scheduler) -> list[list[tuple[str, list[int]]]]:
    """Run the scheduler to the end, finishing the running stage that started first each time."""
    rounds = []
    order: list[str] = []
    while not scheduler.complete:
        launched = scheduler.start_next()
        rounds.append(launched)
        order += [name for name, _ in launched]
        first = next(name for name in order if name in scheduler.running)
        scheduler.finished(first)
    return rounds


def test_upward_rank_is_the_longest_chain_from_a_stage_to_the_end():
    rank = upward_rank(PIPELINE, SECONDS)
    assert rank["report"] == 2
    assert rank["evaluate@b"] == 12
    assert rank["train@b"] == 212
    assert rank["train@a"] == 152
    assert rank["prepare"] == 213  # through train@b, the longer chain
    assert rank["gp"] == 7


def test_ready_stages_start_longest_chain_first_one_core_each():
    scheduler = Scheduler(PIPELINE, SECONDS, cores=[0, 1], max_parallel=2)
    assert scheduler.start_next() == [("prepare", [0]), ("gp", [1])]
    assert scheduler.start_next() == []  # both cores busy
    scheduler.finished("prepare")
    assert scheduler.start_next() == [("train@b", [0])]  # 212 s ahead of train@a's 152
    scheduler.finished("gp")
    assert scheduler.start_next() == [("train@a", [1])]


def test_a_stage_starts_only_after_every_stage_it_needs():
    scheduler = Scheduler(PIPELINE, SECONDS, cores=[0, 1, 2, 3], max_parallel=4)
    done: set[str] = set()
    while not scheduler.complete:
        for name, _ in scheduler.start_next():
            assert set(PIPELINE[name]) <= done, name
        name = sorted(scheduler.running)[0]
        scheduler.finished(name)
        done.add(name)
    assert done == set(PIPELINE)


def test_never_more_than_max_parallel_and_never_a_core_twice():
    scheduler = Scheduler(PIPELINE, SECONDS, cores=[0, 1, 2], max_parallel=2)
    while not scheduler.complete:
        scheduler.start_next()
        held = [core for cores in scheduler.running.values() for core in cores]
        assert len(scheduler.running) <= 2
        assert len(held) == len(set(held))
        scheduler.finished(sorted(scheduler.running)[0])


def test_the_only_ready_stage_with_nothing_running_gets_every_core():
    scheduler = Scheduler({"a": [], "b": ["a"], "c": ["a"]}, {}, cores=[0, 1], max_parallel=2)
    assert scheduler.start_next() == [("a", [0, 1])]
    scheduler.finished("a")
    assert scheduler.start_next() == [("b", [0]), ("c", [1])]


def test_cores_per_stage_splits_a_larger_machine():
    scheduler = Scheduler(PIPELINE, SECONDS, cores=[0, 1, 2, 3], max_parallel=2, cores_per_stage=2)
    assert scheduler.start_next() == [("prepare", [0, 1]), ("gp", [2, 3])]


def test_every_stage_runs_exactly_once():
    rounds = drain(Scheduler(PIPELINE, SECONDS, cores=[0, 1], max_parallel=2))
    started = [name for launched in rounds for name, _ in launched]
    assert sorted(started) == sorted(PIPELINE)


def test_a_failed_stage_starts_nothing_more_and_its_dependents_never_run():
    scheduler = Scheduler(PIPELINE, SECONDS, cores=[0, 1], max_parallel=2)
    scheduler.start_next()  # prepare, gp
    scheduler.finished("prepare")
    scheduler.start_next()  # train@b
    scheduler.finished("train@b", succeeded=False)
    scheduler.halt()
    assert scheduler.start_next() == []
    assert not scheduler.complete  # gp still runs
    scheduler.finished("gp")
    assert scheduler.complete
    assert {"train@a", "evaluate@b", "report"} <= scheduler.pending


def test_without_halt_a_failure_still_blocks_only_its_dependents():
    scheduler = Scheduler({"a": [], "b": [], "c": ["a"]}, {}, cores=[0], max_parallel=1)
    assert scheduler.start_next() == [("a", [0])]
    scheduler.finished("a", succeeded=False)
    assert scheduler.start_next() == [("b", [0])]
    scheduler.finished("b")
    assert scheduler.complete
    assert scheduler.pending == {"c"}


def test_bad_graphs_and_settings_are_refused():
    with pytest.raises(ValueError, match="unknown stages \\['x'\\]"):
        Scheduler({"a": ["x"]}, {}, cores=[0], max_parallel=1)
    with pytest.raises(graphlib.CycleError):
        Scheduler({"a": ["b"], "b": ["a"]}, {}, cores=[0], max_parallel=1)
    with pytest.raises(ValueError, match="max_parallel"):
        Scheduler({"a": []}, {}, cores=[0], max_parallel=0)
    with pytest.raises(ValueError, match="no cores"):
        Scheduler({"a": []}, {}, cores=[], max_parallel=1)

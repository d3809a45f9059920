"""The whole default pipeline (`dvc repro`) in a fresh clone, stage by stage: wall time, peak RSS
of the stage's whole process tree, peak thread count, and the load average around it.

    python -m benchmarks.pipeline [--profile smoke | --profile path.yaml] [--set key=value ...]
                                  [--jobs N] [--out benchmarks/pipeline.json]
                                  [--markdown benchmarks/pipeline.md]

The clone is `git clone` of this repository's HEAD (committed files only) in a temporary
directory, run with this virtual environment and $PML_OPS_MNIST_MIRROR. One `dvc repro` runs
every stage; a stage's wall time runs from DVC's "Running stage" line to the next (so DVC's
hashing and lock-file writing after a stage count towards it). psutil samples the stage's
process tree (DVC's descendants) every --interval seconds: peak RSS is the largest sum of RSS
over the tree at one sample (a peak shorter than the interval can be missed), threads the
largest sum of thread counts. `--profile smoke` (profiles/smoke.yaml) runs every stage in a
couple of minutes.

With `--jobs N` the clone runs `pml-ops repro --jobs N` instead (pml_ops/runtime/parallel_repro.py: up to
N stages at once, each a `dvc repro --single-item` on cores of its own): a stage's wall time then
runs from its launch to its exit (DVC's start-up and lock waits included), its tree is that DVC
process's descendants, and the total is the whole run's, not a sum.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

from pml_ops.config.profiles import apply_profile, load_profile
from pml_ops.runtime.parallel_repro import StageRun

REPO_ROOT = Path(__file__).resolve().parents[1]


def sample_stage_tree(dvc: psutil.Process) -> tuple[int, int]:
    """(RSS bytes, threads) summed over DVC's descendants now: the running stage's command and
    everything it started (DVC's own process is not counted)."""
    rss = threads = 0
    try:
        members = dvc.children(recursive=True)
    except psutil.Error:
        return 0, 0
    for member in members:
        try:
            with member.oneshot():
                rss += member.memory_info().rss
                threads += member.num_threads()
        except psutil.Error:  # ended between listing and reading
            continue
    return rss, threads


def run_pipeline(clone: Path, env: dict[str, str], interval: float) -> tuple[dict[str, dict], float]:
    """`dvc repro` in `clone`, sampling the stage process tree every `interval` s. A stage runs
    from its "Running stage" line to the next one (or the end). Raises if the run fails."""
    began = time.perf_counter()
    dvc = subprocess.Popen(
        ["dvc", "repro"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    process = psutil.Process(dvc.pid)
    stages: dict[str, dict] = {}
    current: list[str] = []
    output: list[str] = []

    def read() -> None:
        for line in dvc.stdout or []:
            output.append(line)
            found = re.match(r"Running stage '([^']+)'", line)
            if found:
                now = time.perf_counter()
                if current:
                    _finish(stages[current[-1]], now)
                current.append(found.group(1))
                stages[found.group(1)] = {
                    "started_s": now - began,
                    "_start": now,
                    "peak_rss_mib": 0.0,
                    "peak_threads": 0,
                    "samples": 0,
                    "load_average_before": os.getloadavg(),
                }
                print(line.rstrip(), flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while dvc.poll() is None:
        rss, threads = sample_stage_tree(process)
        if current:
            row = stages[current[-1]]
            row["peak_rss_mib"] = max(row["peak_rss_mib"], rss / 2**20)
            row["peak_threads"] = max(row["peak_threads"], threads)
            row["samples"] += 1
        time.sleep(interval)
    reader.join()
    end = time.perf_counter()
    if current:
        _finish(stages[current[-1]], end)
    if dvc.returncode != 0:
        raise RuntimeError(f"dvc repro failed ({dvc.returncode}):\n{''.join(output)[-4000:]}")
    return stages, end - began


def run_pipeline_parallel(
    clone: Path, env: dict[str, str], interval: float, jobs: int
) -> tuple[dict[str, dict], float]:
    """`pml-ops repro --jobs JOBS` in `clone` (in this process, its stages as subprocesses),
    sampling each running stage's tree every `interval` s."""
    from pml_ops.runtime.parallel_repro import plan, run_parallel

    began = time.perf_counter()
    stages: dict[str, dict] = {}
    trees: dict[str, psutil.Process] = {}
    lock = threading.Lock()
    done = threading.Event()

    def started(run: StageRun) -> None:
        with lock:
            trees[run.name] = psutil.Process(run.process.pid)
            stages[run.name] = {
                "started_s": run.started - began,
                "cores": run.cores,
                "peak_rss_mib": 0.0,
                "peak_threads": 0,
                "samples": 0,
                "load_average_before": os.getloadavg(),
            }

    def finished(run: StageRun) -> None:
        with lock:
            trees.pop(run.name)
            stages[run.name]["wall_s"] = run.wall_s
            stages[run.name]["load_average_after"] = os.getloadavg()

    def sample() -> None:
        while not done.wait(interval):
            with lock:
                for name, tree in trees.items():
                    rss, threads = sample_stage_tree(tree)
                    row = stages[name]
                    row["peak_rss_mib"] = max(row["peak_rss_mib"], rss / 2**20)
                    row["peak_threads"] = max(row["peak_threads"], threads)
                    row["samples"] += 1

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    previous = Path.cwd()
    saved_env = dict(os.environ)
    try:
        os.chdir(clone)
        os.environ.clear()
        os.environ.update(env)
        run_parallel(clone, plan(clone, ["dvc.yaml"]), jobs, on_start=started, on_finish=finished)
    finally:
        os.chdir(previous)
        os.environ.clear()
        os.environ.update(saved_env)
        done.set()
        sampler.join()
    return stages, time.perf_counter() - began


def _finish(row: dict, now_s: float) -> None:
    row["wall_s"] = now_s - row.pop("_start")
    row["load_average_after"] = os.getloadavg()


def fresh_clone(destination: Path, params: dict | None) -> Path:
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO_ROOT), str(destination)], check=True)
    if params is not None:
        (destination / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return destination


def markdown_table(stages: dict[str, dict], total_s: float) -> str:
    """One row per stage; with stages side by side (a `cores` entry) also when each started and
    on which cores, and the total is the whole run's wall time, not a sum."""
    side_by_side = any("cores" in row for row in stages.values())
    extra = " started (s) | cores |" if side_by_side else ""
    lines = [
        f"| stage | wall (s) |{extra} peak RSS, tree (MiB) | peak threads "
        "| load avg (1 min) before -> after |",
        "|---|---:|" + ("---:|---|" if side_by_side else "") + "---:|---:|---|",
    ]
    for name, row in stages.items():
        cells = f" {row['started_s']:.1f} | {','.join(map(str, row['cores']))} |" if side_by_side else ""
        lines.append(
            f"| {name} | {row['wall_s']:.1f} |{cells} {row['peak_rss_mib']:.0f} | {row['peak_threads']} | "
            f"{row['load_average_before'][0]:.2f} -> {row['load_average_after'][0]:.2f} |"
        )
    peak = max(row["peak_rss_mib"] for row in stages.values())
    label, blank = ("whole run", " | |") if side_by_side else ("all stages", "")
    lines.append(f"| {label} | {total_s:.1f} |{blank} {peak:.0f} (max) | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="'smoke' (profiles/smoke.yaml) or a profile file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a params override (YAML value)"
    )
    parser.add_argument("--interval", type=float, default=0.5, help="sampling period in seconds")
    parser.add_argument(
        "--jobs", type=int, help="run `pml-ops repro --jobs N` (stages side by side), not `dvc repro`"
    )
    parser.add_argument(
        "--workdir",
        help="clone into this new directory and keep it (default: a temporary one, removed after)",
    )
    parser.add_argument("--out", default="benchmarks/pipeline.json")
    parser.add_argument("--markdown", default="benchmarks/pipeline.md")
    args = parser.parse_args(argv)

    overrides: dict = {}
    if args.profile:
        named = REPO_ROOT / "profiles" / f"{args.profile}.yaml"
        overrides.update(load_profile(named if "/" not in args.profile else Path(args.profile)))
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    params = None
    if overrides:
        defaults = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
        params = apply_profile(defaults, overrides, "overrides")

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PML_OPS_PROGRESS"] = "0"
    with contextlib.nullcontext(args.workdir) if args.workdir else tempfile.TemporaryDirectory() as tmp:
        clone = fresh_clone(Path(tmp) / "clone", params)
        if args.jobs:
            stages, total = run_pipeline_parallel(clone, env, args.interval, args.jobs)
        else:
            stages, total = run_pipeline(clone, env, args.interval)
    result = {
        "overrides": overrides,
        "command": f"pml-ops repro --jobs {args.jobs}" if args.jobs else "dvc repro",
        "machine": {
            "cpus": psutil.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)),
            "memory_gib": psutil.virtual_memory().total / 2**30,
            "platform": platform.platform(),
        },
        "total_wall_s": total,
        "stages": stages,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.markdown).write_text(markdown_table(stages, total))
    print(markdown_table(stages, total))


if __name__ == "__main__":
    main()

"""Progress output: live bars on a terminal, a few whole lines without one, nothing when off."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from pml_ops.core import progress as progress_module
from pml_ops.core.progress import PlainProgress, progress, progress_mode
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    ("value", "mode"), [("plain", "plain"), ("0", "off"), ("false", "off"), ("1", "bar"), ("yes", "bar")]
)
def test_environment_forces_the_mode(monkeypatch, value: str, mode: str):
    monkeypatch.setenv("PML_OPS_PROGRESS", value)
    assert progress_mode() == mode


def test_no_terminal_means_plain_lines(monkeypatch):
    monkeypatch.delenv("PML_OPS_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a TTY
    assert progress_mode() == "plain"
    assert isinstance(progress(range(3)), PlainProgress)


def test_plain_lines_every_ten_percent_and_at_the_end(monkeypatch):
    monkeypatch.setenv("PML_OPS_PROGRESS", "plain")
    out = io.StringIO()
    bar = progress(range(25), desc="epoch", file=out, mininterval=0)
    for epoch in bar:
        bar.set_postfix(loss=1.0 / (epoch + 1))
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert 11 <= len(lines) <= 12  # start, each 10% step, end: bounded whatever the length
    assert lines[0].startswith("epoch:   0% 0/25")
    assert lines[-1].startswith("epoch: 100% 25/25") and "loss=0.04" in lines[-1]
    percents = [int(line.split("%")[0].split()[-1]) for line in lines]
    assert percents == sorted(percents)


def test_plain_output_stays_short_for_long_loops(monkeypatch):
    monkeypatch.setenv("PML_OPS_PROGRESS", "plain")
    out = io.StringIO()
    for _ in progress(range(200_000), desc="steps", file=out):
        pass
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= 12 and lines[-1].startswith("steps: 100% 200000/200000")


def test_unknown_total_prints_on_a_clock_and_at_the_end(monkeypatch):
    monkeypatch.setenv("PML_OPS_PROGRESS", "plain")
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL_S", 0.0)
    out = io.StringIO()
    with progress(desc="download", unit="B", unit_scale=True, file=out, mininterval=0) as bar:
        for _ in range(3):
            bar.update(1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5  # start, three updates, end
    assert lines[-1].startswith("download: 3.00kB")


def test_loop_left_early_reports_where_it_stopped(monkeypatch):
    monkeypatch.setenv("PML_OPS_PROGRESS", "plain")
    out = io.StringIO()
    with progress(total=10, desc="trials", file=out, mininterval=60) as bar:
        bar.update(4)
    assert out.getvalue().splitlines()[-1].startswith("trials:  40% 4/10")


def test_off_is_silent(monkeypatch):
    monkeypatch.setenv("PML_OPS_PROGRESS", "0")
    out = io.StringIO()
    assert list(progress(range(5), file=out)) == [0, 1, 2, 3, 4]
    assert out.getvalue() == ""


def test_a_stage_without_terminal_logs_plain_progress():
    """A child process whose stderr is a pipe (as under CI) gets plain lines by default."""
    script = "from pml_ops.core.progress import progress\nfor _ in progress(range(50), desc='work'): pass\n"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("work: 100% 50/50")

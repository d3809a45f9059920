"""The repository's commit-msg hook: subjects under 73 characters, no talk of how work was organised."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[2] / ".githooks" / "commit-msg"


def _check(tmp_path: Path, message: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message)
    return subprocess.run(["bash", str(HOOK), str(path)], capture_output=True, text=True)


def test_a_short_subject_with_a_body_passes(tmp_path):
    subject = "Move test helpers to tests/helpers/"
    result = _check(tmp_path, f"{subject.ljust(72, '.')}\n\nThe detail, as long as it needs.\n# a comment\n")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("message", "said"),
    [
        ("x" * 73 + "\n", "the subject is 73 characters"),
        ("# only a comment\n\n", "no subject line"),
        ("Fix the loader\n\nAs asked in issue " + "31.\n", "not how the work was organised"),
        ("Fix the loader\n\nWhat the earlier " + "session left.\n", "not how the work was organised"),
    ],
)
def test_a_long_subject_or_talk_of_the_work_is_refused(tmp_path, message, said):
    result = _check(tmp_path, message)
    assert result.returncode == 1
    assert said in result.stderr

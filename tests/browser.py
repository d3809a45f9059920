"""Headless Chromium for tests that look at a page the way a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
]


def chromium_binary() -> str:
    """$PML_OPS_CHROMIUM, else Debian's chromium (or another Chromium build on PATH).

    Missing is a failure in CI (CI=true), a skip elsewhere."""
    names = (os.environ.get("PML_OPS_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome")
    for name in filter(None, names):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium not found: `apt-get install chromium` (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def chromium(page: Path, profile: Path, *args: str, timeout_s: float = 90) -> subprocess.CompletedProcess:
    """Run headless Chromium on a local file with a fresh profile; fail loudly if it fails."""
    command = [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise AssertionError(f"chromium failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result

from __future__ import annotations

import subprocess

from pml_ops.cli import main
from tests.conftest import REPO_ROOT, VENV_BIN


def test_help_lists_commands():
    result = subprocess.run([str(VENV_BIN / "pml-ops"), "--help"], capture_output=True, text=True, check=True)
    assert "validate" in result.stdout and "ui" in result.stdout


def test_validate_ok_and_bad(tmp_path, capsys):
    assert main(["--params", str(REPO_ROOT / "params.yaml"), "validate"]) == 0
    bad = tmp_path / "params.yaml"
    bad.write_text((REPO_ROOT / "params.yaml").read_text().replace("timeout_s: 30.0", "timeout_s: 0"))
    assert main(["--params", str(bad), "validate"]) == 2
    assert "'data.timeout_s': Input should be greater than 0" in capsys.readouterr().err

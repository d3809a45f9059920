"""docs/faults.md is backed by tests: every test its table names exists."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO_ROOT

FAULTS_DIR = REPO_ROOT / "tests" / "faults"


def _tests_in(file_name: str) -> set[str]:
    tree = ast.parse((FAULTS_DIR / file_name).read_text())
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_every_test_named_in_the_fault_table_exists():
    table = (REPO_ROOT / "docs" / "faults.md").read_text()
    named = re.findall(r"`(test_fault_\w+\.py)::(test_\w+)(?:\[[^\]]+\])?`", table)
    assert len(named) >= 20
    missing = [f"{file}::{test}" for file, test in named if test not in _tests_in(file)]
    assert missing == []
    files = {file for file, _ in named}
    assert files == {path.name for path in FAULTS_DIR.glob("test_fault_*.py")} - {"test_fault_table.py"}

"""scripts/function_length.py: functions longer than a screen need a reason in their docstring."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "function_length.py"
spec = importlib.util.spec_from_file_location("function_length", SCRIPT)
assert spec is not None and spec.loader is not None
function_length = importlib.util.module_from_spec(spec)
spec.loader.exec_module(function_length)


def _function(name: str, lines: int, docstring: str = "") -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 2))
    return f'def {name}():\n    """{docstring}"""\n{body}'


def test_a_long_function_without_a_reason_fails_and_one_with_a_reason_passes(tmp_path, capsys):
    (tmp_path / "short.py").write_text(_function("short", 60))
    (tmp_path / "explained.py").write_text(_function("explained", 80, "Long because it is one kernel."))
    assert function_length.main([str(tmp_path)]) == 0
    assert "explained is 80 lines" in capsys.readouterr().out
    (tmp_path / "long.py").write_text(_function("unexplained", 61))
    assert function_length.main([str(tmp_path)]) == 1
    assert "unexplained is 61 lines (no reason in its docstring)" in capsys.readouterr().out


def test_the_package_and_the_stages_hold_no_unexplained_long_function():
    root = SCRIPT.parents[1]
    assert function_length.main([str(root / "pml_ops"), str(root / "pipelines")]) == 0

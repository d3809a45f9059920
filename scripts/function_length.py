"""Lists the functions longer than a reader holds in one view (default 60 lines) in the given
folders; exits 1 if any has no reason for its length in its docstring ("Long because ...").

    python scripts/function_length.py pml_ops pipelines [--max-lines 60]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REASON = "Long because"


def long_functions(root: Path, max_lines: int) -> list[tuple[Path, int, str, int, bool]]:
    """(file, line, name, length, has a reason) of every function over `max_lines` under `root`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > max_lines:
                    reason = REASON in (ast.get_docstring(node) or "")
                    found.append((path, node.lineno, node.name, length, reason))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--max-lines", type=int, default=60)
    args = parser.parse_args(argv)
    unexplained = 0
    for folder in args.folders:
        for path, line, name, length, reason in long_functions(folder, args.max_lines):
            note = "" if reason else " (no reason in its docstring)"
            print(f"{path}:{line}: {name} is {length} lines{note}")
            unexplained += not reason
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())

"""Objectives given as numpy expressions in `x` (as written in params.yaml).

The parser takes a small whitelist (arithmetic, numpy's elementary functions, `x`, `pi`, `e`)
and bounds what could blow up before anything is evaluated: every number is evaluated as a
float (so `9**9**9**9` cannot become a big-integer computation), literals are at most
`MAX_CONSTANT` in size, a literal exponent at most `MAX_EXPONENT`, and an exponent that is not a
literal holds no further power (no towers). `check_finite` then evaluates the objective once on
the grid a stage will use, under a time limit, and refuses values that are not finite.
"""

from __future__ import annotations

import ast
import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import cast

import numpy as np

from pml_ops.core.errors import ConfigError

_FUNCTIONS = {
    name: getattr(np, name)
    for name in ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sinh", "cosh", "arctan")
}
_CONSTANTS = {"pi": np.pi, "e": np.e}
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_UNARY = (ast.UAdd, ast.USub)

MAX_LENGTH = 1000  # characters
MAX_NODES = 300  # syntax-tree nodes
MAX_CONSTANT = 1e6  # largest literal
MAX_EXPONENT = 64  # largest literal exponent
EVALUATION_LIMIT_S = 5.0  # one evaluation on a validation grid
DENSE_GRID_POINTS = 20001  # the grid `grid_minimum` searches (and validation checks)


def _literal(node: ast.AST) -> float | None:
    """The value of a number literal, optionally signed; None for anything else."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return sign * float(node.value)
    return None


def _check_node(node: ast.AST, text: str) -> None:
    def refuse(reason: str) -> ConfigError:
        return ConfigError(f"objective {text!r}: {reason}")

    if isinstance(node, ast.Constant):
        if not isinstance(node.value, int | float) or isinstance(node.value, bool):
            raise refuse(f"{node.value!r} is not a number")
        if not math.isfinite(node.value) or abs(node.value) > MAX_CONSTANT:
            raise refuse(f"the literal {node.value!r} exceeds {MAX_CONSTANT:g} in size")
    elif isinstance(node, ast.Name):
        if node.id not in {"x", *_FUNCTIONS, *_CONSTANTS}:
            raise refuse(f"unknown name {node.id!r}")
    elif isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            raise refuse("only numpy functions may be called")
        if len(node.args) != 1 or node.keywords:
            raise refuse(f"{node.func.id}() takes exactly one argument")
    elif isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BINARY):
            raise refuse(f"the operator {type(node.op).__name__} is not allowed (only + - * / **)")
        if isinstance(node.op, ast.Pow):
            exponent = _literal(node.right)
            if exponent is not None and abs(exponent) > MAX_EXPONENT:
                raise refuse(f"the exponent {exponent:g} exceeds {MAX_EXPONENT} in size")
            if exponent is None and any(
                isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Pow)
                for inner in ast.walk(node.right)
            ):
                raise refuse("a power inside an exponent (a tower such as 9**9**9) is not allowed")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARY):
            raise refuse(f"the operator {type(node.op).__name__} is not allowed")
    elif not isinstance(node, (ast.Expression, ast.Load, ast.operator, ast.unaryop)):
        raise refuse(f"{type(node).__name__} is not allowed")


class _Floats(ast.NodeTransformer):
    """Every integer literal becomes a float: arithmetic stays in bounded floating point."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        return ast.copy_location(ast.Constant(float(cast(float, node.value))), node)


class Expression:
    """A picklable elementwise function of `x` built from arithmetic and numpy's elementary
    functions, e.g. ``sin(20*x) + 2*cos(14*x) - 2*sin(6*x)``."""

    def __init__(self, text: str):
        if len(text) > MAX_LENGTH:
            raise ConfigError(f"objective is {len(text)} characters long, at most {MAX_LENGTH} allowed")
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as error:
            raise ConfigError(f"objective {text!r} is not a valid expression: {error.msg}") from None
        nodes = list(ast.walk(tree))
        if len(nodes) > MAX_NODES:
            raise ConfigError(f"objective {text!r}: {len(nodes)} syntax nodes, at most {MAX_NODES} allowed")
        for node in nodes:
            _check_node(node, text)
        self.text = text
        self._code = compile(ast.fix_missing_locations(_Floats().visit(tree)), "<objective>", "eval")

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        value = eval(self._code, {"__builtins__": {}}, {**_FUNCTIONS, **_CONSTANTS, "x": x})
        return np.broadcast_to(np.asarray(value, dtype=float), x.shape).copy()

    def __getstate__(self) -> str:
        return self.text

    def __setstate__(self, text: str) -> None:
        self.__init__(text)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _Timeout after `seconds` of wall time (SIGALRM; only in the main thread, the only
    place signals arrive: elsewhere the parser's bounds alone keep an evaluation short)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # someone else's alarm (e.g. pytest-timeout's) goes on
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)


def check_finite(objective: Expression, x: np.ndarray, where: str) -> None:
    """Evaluate `objective` once at the points `x` (the grid a stage will use); raise
    ConfigError if that takes over `EVALUATION_LIMIT_S` or gives a value that is not finite."""
    try:
        with _time_limit(EVALUATION_LIMIT_S), np.errstate(all="ignore"):
            values = objective(x)
    except _Timeout:
        raise ConfigError(
            f"objective {objective.text!r}: one evaluation on {where} took over {EVALUATION_LIMIT_S:g} s"
        ) from None
    except (ArithmeticError, TypeError, ValueError) as error:  # 1/0 on literals, `sin + x`
        raise ConfigError(f"objective {objective.text!r} cannot be evaluated ({error})") from None
    bad = ~np.isfinite(values)
    if bad.any():
        at = float(np.asarray(x, dtype=float)[bad][0])
        raise ConfigError(
            f"objective {objective.text!r} is not finite on {where}: {values[bad][0]} at x = {at:g}"
        )


def grid_minimum(
    function: Callable[[np.ndarray], np.ndarray], bounds: tuple[float, float], points: int = DENSE_GRID_POINTS
) -> tuple[float, float]:
    """The global minimum of a 1-D function on an interval: a dense grid, then a bounded
    local refinement around the best grid point. Returns (x_min, f_min)."""
    # deferred: ~0.4 s at import; config imports this module in every stage, and only the gp and
    # bayesopt stages look for a minimum
    from scipy.optimize import minimize_scalar

    low, high = bounds
    grid = np.linspace(low, high, points)
    values = function(grid)
    best = int(np.argmin(values))
    step = (high - low) / (points - 1)
    bracket = (max(low, grid[best] - step), min(high, grid[best] + step))
    refined = minimize_scalar(
        lambda x: float(function(np.array([x]))[0]),
        bounds=bracket,
        method="bounded",
        options={"xatol": 1e-10},
    )
    if refined.fun < values[best]:
        return float(refined.x), float(refined.fun)
    return float(grid[best]), float(values[best])

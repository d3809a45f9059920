"""Objectives given as numpy expressions in `x` (as written in params.yaml)."""

from __future__ import annotations

import ast
from collections.abc import Callable

import numpy as np

from pml_ops.errors import ConfigError

_FUNCTIONS = {
    name: getattr(np, name)
    for name in ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sinh", "cosh", "arctan")
}
_CONSTANTS = {"pi": np.pi, "e": np.e}
_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.operator,
    ast.unaryop,
)


class Expression:
    """A picklable elementwise function of `x` built from arithmetic and numpy's elementary
    functions, e.g. ``sin(20*x) + 2*cos(14*x) - 2*sin(6*x)``."""

    def __init__(self, text: str):
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as error:
            raise ConfigError(f"objective {text!r} is not a valid expression: {error.msg}") from None
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED_NODES):
                raise ConfigError(f"objective {text!r}: {type(node).__name__} is not allowed")
            if isinstance(node, ast.Name) and node.id not in {"x", *_FUNCTIONS, *_CONSTANTS}:
                raise ConfigError(f"objective {text!r}: unknown name {node.id!r}")
            if isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            ):
                raise ConfigError(f"objective {text!r}: only numpy functions may be called")
        self.text = text
        self._code = compile(tree, "<objective>", "eval")

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


def grid_minimum(
    function: Callable[[np.ndarray], np.ndarray], bounds: tuple[float, float], points: int = 20001
) -> tuple[float, float]:
    """The global minimum of a 1-D function on an interval: a dense grid, then a bounded
    local refinement around the best grid point. Returns (x_min, f_min)."""
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

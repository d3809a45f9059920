"""The GP kernel of params.yaml (`gp.kernel`, `bayesopt.kernel`): the known kernel names, the
hyperparameters each one has, and the one grammar of kernel expressions.

    expression := term ("+" term)*
    term       := factor ("*" factor)*
    factor     := NAME | "(" expression ")"

`*` binds tighter than `+`, as usual: ``rbf + matern12 * periodic`` is
``rbf + (matern12 * periodic)``. The parse is a small tree of names, sums and products;
`pml_ops.gp.kernels` turns it into kernel objects, and the config checks with it that every
hyperparameter kind the kernel has (`hyperparameter_kinds`) has its prior in `gp.priors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pml_ops.core.errors import ConfigError

# name in params.yaml -> the kinds of its hyperparameters, in the kernel's order
KERNEL_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "rbf": ("variance", "lengthscale"),
    "matern12": ("variance", "lengthscale"),
    "matern32": ("variance", "lengthscale"),
    "matern52": ("variance", "lengthscale"),
    "rational_quadratic": ("variance", "lengthscale", "alpha"),
    "periodic": ("variance", "lengthscale", "period"),
}
KNOWN_KERNELS = ", ".join(sorted(KERNEL_HYPERPARAMETERS))

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|([+*()]))")


@dataclass(frozen=True)
class KernelName:
    name: str


@dataclass(frozen=True)
class KernelSum:
    terms: tuple[KernelTree, ...]


@dataclass(frozen=True)
class KernelProduct:
    factors: tuple[KernelTree, ...]


KernelTree = KernelName | KernelSum | KernelProduct


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"kernel {text!r}: unexpected {text[position:].strip()[0]!r}")
        tokens.append(match.group(1) or match.group(2))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens; raises ValueError with what went wrong."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str | None:
        token = self._peek()
        self.position += 1
        return token

    def parse(self) -> KernelTree:
        if not self.tokens:
            raise ValueError(f"empty kernel; known: {KNOWN_KERNELS}")
        tree = self._expression()
        if self._peek() is not None:
            raise ValueError(f"kernel {self.text!r}: unexpected {self._peek()!r}")
        return tree

    def _expression(self) -> KernelTree:
        terms = [self._term()]
        while self._peek() == "+":
            self._take()
            terms.append(self._term())
        return terms[0] if len(terms) == 1 else KernelSum(tuple(terms))

    def _term(self) -> KernelTree:
        factors = [self._factor()]
        while self._peek() == "*":
            self._take()
            factors.append(self._factor())
        return factors[0] if len(factors) == 1 else KernelProduct(tuple(factors))

    def _factor(self) -> KernelTree:
        token = self._take()
        if token == "(":
            tree = self._expression()
            if self._take() != ")":
                raise ValueError(f"kernel {self.text!r}: missing ')'")
            return tree
        if token is None or token in ("+", "*", ")"):
            found = "the end" if token is None else repr(token)
            raise ValueError(f"kernel {self.text!r}: expected a kernel name, found {found}")
        if token not in KERNEL_HYPERPARAMETERS:
            raise ValueError(f"unknown kernel {token!r}; known: {KNOWN_KERNELS}")
        return KernelName(token)


def parse_kernel_expression(text: str, key: str = "kernel") -> KernelTree:
    """The tree of a kernel expression; ConfigError naming `key` (e.g. ``gp.kernel``) if the text
    does not parse or names an unknown kernel."""
    try:
        return _Parser(text).parse()
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from None


def leaf_names(tree: KernelTree) -> tuple[str, ...]:
    """The kernel names of the expression, left to right."""
    if isinstance(tree, KernelName):
        return (tree.name,)
    parts = tree.terms if isinstance(tree, KernelSum) else tree.factors
    return tuple(name for part in parts for name in leaf_names(part))


def hyperparameter_kinds(tree: KernelTree) -> tuple[str, ...]:
    """Each kind of hyperparameter the kernel has (variance, lengthscale, alpha, period), once."""
    kinds = (kind for name in leaf_names(tree) for kind in KERNEL_HYPERPARAMETERS[name])
    return tuple(dict.fromkeys(kinds))


def check_kernel(text: str) -> str:
    """Pydantic field check: the expression parses and names known kernels only."""
    _Parser(text).parse()
    return text

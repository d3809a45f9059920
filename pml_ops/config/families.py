"""The density families params.yaml may name: pml-ops's own and those that installed packages
declare in the `pml_ops.families` entry-point group, found once per process.

The config layer reads of a family only what validating params.yaml takes (`FamilySchema`): its
name, the schema of its params.yaml section, whether it reads tuned sections and a check of its
section against the shared `density` settings. The whole family (`pml_ops.density.family.Family`)
is the density registry's business: this module never imports `pml_ops.density`, it loads the
objects that the entry points name, as any entry-point consumer does. Loading one imports only its
module (no torch, mlflow or scikit-learn: a family imports those when it builds or fits a model).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pml_ops.config.base import Section
from pml_ops.config.density import DensityParams
from pml_ops.core.errors import ConfigError

GROUP = "pml_ops.families"
# pml-ops's own families, as pyproject.toml declares them in GROUP. They are found from here too,
# so that a checkout whose installed metadata predates them (or one not installed) has them;
# the same declaration found again through the metadata is the same family, not a duplicate.
BUILTIN = {
    "vae": "pml_ops.density.models.vae:vae",
    "cvae": "pml_ops.density.models.vae:cvae",
    "ppca": "pml_ops.density.models.ppca:ppca",
    "gmm": "pml_ops.density.models.gmm:gmm",
}


class FamilySchema(Protocol):
    """What params.yaml's validation reads of a density family."""

    @property
    def name(self) -> str: ...  # the `family` of a `models` entry, and its section of params.yaml

    @property
    def section(self) -> type[Section]: ...  # the schema of that section

    @property
    def tuned(self) -> bool: ...  # its models may read a tuned section of tuning.best_params_file

    @property
    def validate(self) -> Callable[[Any, DensityParams], None] | None:
        """A check of the section against the shared `density` settings (raises ValueError
        naming the dotted key), or None."""
        ...


@dataclass(frozen=True)
class Found:
    """A family as discovered: the object and where it was declared (for messages)."""

    family: FamilySchema
    reference: str  # module:attribute
    source: str
    distribution: str | None = None  # 'name==version' of the package that declared it (not pml-ops)


def _import(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def _checked(name: str, family: Any, source: str, reserved: frozenset[str]) -> Any:
    if not name.isidentifier() or name in reserved:
        raise ConfigError(f"density family {name!r} from {source}: not a usable section name of params.yaml")
    if getattr(family, "name", None) != name:
        raise ConfigError(
            f"density family {name!r} from {source}: the object's name is "
            f"{getattr(family, 'name', None)!r}, not {name!r}"
        )
    section = getattr(family, "section", None)
    if not (isinstance(section, type) and issubclass(section, Section)):
        raise ConfigError(
            f"density family {name!r} from {source}: its section schema must be a subclass of "
            f"pml_ops.config.Section, got {section!r}"
        )
    return family


def _load(name: str, load: Callable[[], Any], source: str) -> Any:
    try:
        return load()
    except Exception as error:  # a broken plug-in: say which, and why
        raise ConfigError(
            f"density family {name!r} from {source}: cannot be loaded ({type(error).__name__}: {error})"
        ) from None


def discover(reserved: frozenset[str] = frozenset()) -> dict[str, Found]:
    """Every density family by name: the built-ins, then the entry points of GROUP (in the order
    importlib.metadata lists them). `reserved`: names a family may not take (params.yaml's other
    sections). A name declared twice for different objects is a ConfigError naming both."""
    found = {}
    for name, reference in BUILTIN.items():
        source = f"pml-ops's own families ({reference})"
        family = _load(name, functools.partial(_import, reference), source)
        found[name] = Found(_checked(name, family, source, reserved), reference, source)
    for entry in importlib.metadata.entry_points(group=GROUP):
        dist = getattr(entry, "dist", None)
        owner = f"distribution {dist.name} {dist.version}" if dist is not None else "an unknown distribution"
        source = f"entry point '{entry.name} = {entry.value}' of {owner} (group {GROUP})"
        if entry.name in found:
            if found[entry.name].reference == entry.value:  # pml-ops's own, through its metadata
                continue
            raise ConfigError(
                f"density family {entry.name!r} is declared twice: by {found[entry.name].source} "
                f"and by {source}; uninstall one of them or give one another name"
            )
        family = _checked(entry.name, _load(entry.name, entry.load, source), source, reserved)
        distribution = f"{dist.name}=={dist.version}" if dist is not None else None
        found[entry.name] = Found(family, entry.value, source, distribution)
    return found

"""The one explicit list of catalogers (STYLE.md 4): nothing registers itself on import."""

from __future__ import annotations

from collections.abc import Iterable

from patchline.catalog.apk import ApkCataloger
from patchline.catalog.dpkg import DpkgCataloger
from patchline.catalog.golang import GoBinaryCataloger
from patchline.catalog.interface import Cataloger
from patchline.catalog.java import JavaCataloger
from patchline.catalog.npm import NpmCataloger
from patchline.catalog.python import PythonCataloger
from patchline.catalog.rpm import RpmCataloger
from patchline.catalog.ruby import RubyGemCataloger
from patchline.catalog.runtimes import RuntimeCataloger
from patchline.catalog.rust import CargoAuditableCataloger
from patchline.errors import ConfigError

__all__ = ["DEFAULT_CATALOGERS", "catalogers_by_name"]

DEFAULT_CATALOGERS: tuple[Cataloger, ...] = (
    DpkgCataloger(),
    ApkCataloger(),
    RpmCataloger(),
    PythonCataloger(),
    NpmCataloger(),
    JavaCataloger(),
    GoBinaryCataloger(),
    CargoAuditableCataloger(),  # offered the executables in which Go finds no build info
    RuntimeCataloger(),
    RubyGemCataloger(),
)


def catalogers_by_name(names: Iterable[str]) -> tuple[Cataloger, ...]:
    """The default catalogers with these names, in the order given.

    Raises ``ConfigError`` for an unknown name, a repeated one, or no names at all.
    """
    known = {cataloger.name: cataloger for cataloger in DEFAULT_CATALOGERS}
    chosen: list[Cataloger] = []
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown cataloger {name!r}; known: {', '.join(sorted(known))}")
        if known[name] in chosen:
            raise ConfigError(f"cataloger {name!r} is named twice")
        chosen.append(known[name])
    if not chosen:
        raise ConfigError("no catalogers named: at least one is needed")
    return tuple(chosen)

"""The cargo-auditable cataloger on tiny ELF files with a ``.dep-v0`` section, built by the Go tests' ``elf()``."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from tests.unit.catalog.test_golang import elf

from patchline._model import Ecosystem
from patchline.catalog.interface import CatalogError, Found
from patchline.catalog.rust import MAX_JSON_SIZE, CargoAuditableCataloger

RUST = CargoAuditableCataloger()

# As cargo-auditable writes it: the root crate, registry crates, a build dependency; "kind" only when not runtime.
DEPS: dict[str, Any] = {"packages": [
    {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1, 2, 3], "root": True},
    {"name": "smallvec", "version": "1.6.0", "source": "crates.io"},
    {"name": "syn", "version": "1.0.109", "source": "crates.io", "kind": "build"},
    {"name": "syn", "version": "2.0.39", "source": "crates.io"},
]}
FOUND = (Found(Ecosystem.CARGO, "app", "0.1.0"), Found(Ecosystem.CARGO, "smallvec", "1.6.0"),
         Found(Ecosystem.CARGO, "syn", "1.0.109"), Found(Ecosystem.CARGO, "syn", "2.0.39"))


def dep_v0(doc: object) -> bytes:
    return zlib.compress(json.dumps(doc).encode())


def auditable(doc: object = DEPS, **options: Any) -> bytes:
    return elf([(".text", b"\xc3" * 32), (".dep-v0", dep_v0(doc))], **options)


@pytest.mark.parametrize(("bits", "order"), [(64, "<"), (32, "<"), (64, ">")])
def test_every_package_of_the_section(bits: int, order: str) -> None:
    result = RUST.parse("/usr/local/bin/app", auditable(bits=bits, order=order))
    assert result.packages == FOUND
    assert result.skipped == ()


def test_an_elf_without_the_section_yields_nothing() -> None:
    assert RUST.parse("/usr/bin/true", elf([(".text", b"\xc3")])).packages == ()
    assert RUST.parse("/usr/bin/true", elf([(".text", b"\xc3")], with_sections=False)).packages == ()


def test_an_entry_without_name_or_version_is_a_skip() -> None:
    doc = {"packages": [{"name": "ok", "version": "1.0.0"}, {"name": "noversion"}, "junk"]}
    result = RUST.parse("/app", auditable(doc))
    assert result.packages == (Found(Ecosystem.CARGO, "ok", "1.0.0"),)
    assert len(result.skipped) == 2 and all("has no name and version" in r for r in result.skipped)


@pytest.mark.parametrize(("section", "error"), [
    (b"not zlib at all", "not zlib data"),
    (zlib.compress(b"{not json"), "not JSON"),
    (zlib.compress(b'{"format": 1}'), "no 'packages' list"),
    (zlib.compress(b"[" * 100_000 + b"]" * 100_000), "JSON|nested too deeply"),
    (zlib.compress(json.dumps(DEPS).encode())[:20], "zlib stream ends early"),
])
def test_garbage_is_a_skip_with_its_reason(section: bytes, error: str) -> None:
    with pytest.raises(CatalogError, match=error):
        RUST.parse("/app", elf([(".dep-v0", section)]))


def test_a_zlib_bomb_stops_at_the_cap() -> None:
    bomb = zlib.compress(b'{"packages": [' + b" " * (MAX_JSON_SIZE * 4) + b"]}", 9)
    assert len(bomb) < 100_000
    with pytest.raises(CatalogError, match=r"inflates past the \d+ byte limit"):
        RUST.parse("/app", elf([(".dep-v0", bomb)]))


def test_a_truncated_file_is_a_skip() -> None:
    data = auditable()
    with pytest.raises(CatalogError, match="truncated ELF"):
        RUST.parse("/app", data[: len(data) - 300])
    with pytest.raises(CatalogError, match="truncated ELF"):
        RUST.parse("/app", data[:40])

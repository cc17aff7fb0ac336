"""The runtime classifiers: CPython, Node.js, JDK ``release`` and ``go/VERSION``, and their ownership."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_harness import glob_matches
from tests.support.ocibuild import Entry, file, write_layout

from patchline import Ecosystem, Inventory
from patchline.catalog._ownership import language_metadata_paths
from patchline.catalog.interface import Found
from patchline.catalog.runtimes import RuntimeCataloger, is_runtime_file
from patchline.inventory import scan_image
from patchline.oci._layout import LayoutSource

ELF_PAD = b"\x7fELF" + bytes(60)
PY_BIN = ELF_PAD + b"\x00Python %s\x00" + b"\x003.11.7\x00" + b"\x00/usr/local/lib/python3.11\x00"
NODE_BIN = ELF_PAD + b"\x00node.js/v18.19.0\x00https://nodejs.org/download/release/v18.19.0/\x00"
JDK_RELEASE = b'IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="17.0.9"\nJAVA_VERSION_DATE="2023-10-17"\n'


def python(version: str) -> Found:
    return Found(Ecosystem.GENERIC, "python", version)


@pytest.mark.parametrize(("path", "data", "expected"), [
    ("/usr/local/bin/python3.11", PY_BIN, {python("3.11.7")}),
    ("/usr/local/lib/libpython3.11.so.1.0", PY_BIN, {python("3.11.7")}),
    ("/usr/local/bin/python3.12", PY_BIN, set()),  # only a 3.11 version string inside: not this file's
    ("/usr/local/bin/python3.11", b"#!/bin/sh\nexec /opt/py/bin/python3.11 \"$@\"\n", set()),
    ("/usr/local/bin/python3.13", ELF_PAD + b"\x003.13.0rc2\x00", {python("3.13.0rc2")}),
    ("/usr/local/bin/node", NODE_BIN, {Found(Ecosystem.GENERIC, "node", "18.19.0")}),
    ("/usr/lib/x86_64-linux-gnu/libnode.so.108", NODE_BIN, {Found(Ecosystem.GENERIC, "node", "18.19.0")}),
    ("/usr/bin/node", ELF_PAD + b"\x00libnode.so.108\x00", set()),  # Debian's: the version is in libnode
    ("/opt/java/openjdk/release", JDK_RELEASE, {Found(Ecosystem.GENERIC, "openjdk", "17.0.9")}),
    ("/srv/app/release", b"v1.2\n", set()),
    ("/usr/local/go/VERSION", b"go1.21.5\ntime 2023-11-29T21:21:51Z\n", {Found(Ecosystem.GOLANG, "stdlib", "1.21.5")}),
])
def test_runtime_versions_from_their_files(path: str, data: bytes, expected: set[Found]) -> None:
    cataloger = RuntimeCataloger()
    assert any(glob_matches(g, path) for g in cataloger.globs)
    result = cataloger.parse(path, data)
    assert set(result.packages) == expected
    assert result.skipped == ()


def test_a_development_go_toolchain_is_a_skip() -> None:
    result = RuntimeCataloger().parse("/usr/local/go/VERSION", b"devel go1.22-abcdef\n")
    assert result.packages == ()
    assert result.skipped == ("Go toolchain version 'devel go1.22-abcdef' is not a release",)


@pytest.mark.parametrize("path", [
    "/usr/local/bin/python3.11", "/usr/bin/python3.9", "/usr/local/bin/python3.11-config", "/usr/local/bin/python3",
    "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "/usr/local/lib/libpython3.so", "/usr/bin/node",
    "/usr/lib/x86_64-linux-gnu/libnode.so.108", "/usr/lib/jvm/java-17-openjdk-amd64/release",
    "/usr/local/go/VERSION", "/usr/lib/go-1.19/VERSION", "/usr/bin/nodejs", "/usr/share/node/x/node",
])
def test_ownership_claims_exactly_what_the_globs_read(path: str) -> None:
    assert is_runtime_file(path) == any(glob_matches(g, path) for g in RuntimeCataloger.globs)
    assert (path in language_metadata_paths([path])) == is_runtime_file(path)


def scan(root: Path) -> Inventory:
    with LayoutSource(root) as source:
        return scan_image(source)


def test_one_python_per_install_prefix_and_none_for_what_dpkg_installed(tmp_path: Path) -> None:
    status = ("Package: nodejs\nStatus: install ok installed\nArchitecture: amd64\nVersion: 18.19.0+dfsg-6\n"
              "Description: node\n node\n")
    write_layout(tmp_path, [
        [file("var/lib/dpkg/status", status),
         file("var/lib/dpkg/info/nodejs.list", "/.\n/usr\n/usr/bin\n/usr/bin/node\n"),
         Entry("usr/bin/node", NODE_BIN, mode=0o755)],
        [Entry("usr/local/bin/python3.11", PY_BIN, mode=0o755),
         Entry("usr/local/lib/libpython3.11.so.1.0", PY_BIN),
         Entry("opt/node/bin/node", NODE_BIN, mode=0o755),
         Entry("opt/java/openjdk/release", JDK_RELEASE)],
    ])
    inv = scan(tmp_path)
    assert {(p.name, p.version, p.purl, p.locations) for p in inv.packages if p.ecosystem is Ecosystem.GENERIC} == {
        ("python", "3.11.7", "pkg:generic/python@3.11.7",
         ("/usr/local/bin/python3.11", "/usr/local/lib/libpython3.11.so.1.0")),
        ("node", "18.19.0", "pkg:generic/node@18.19.0", ("/opt/node/bin/node",)),
        ("openjdk", "17.0.9", "pkg:generic/openjdk@17.0.9", ("/opt/java/openjdk/release",)),
    }
    assert inv.skipped == ()

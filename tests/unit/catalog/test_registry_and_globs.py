"""The one registry, the globs each cataloger declares, and ownership paths."""

from __future__ import annotations

import pytest
from catalog_harness import glob_matches

from patchline.catalog import (
    DEFAULT_CATALOGERS,
    ApkCataloger,
    Cataloger,
    DpkgCataloger,
    NpmCataloger,
    PythonCataloger,
    RpmCataloger,
    catalogers_by_name,
)
from patchline.catalog._ownership import language_metadata_paths
from patchline.errors import ConfigError
from patchline.inventory._walk import content_match


def test_default_catalogers_have_distinct_names_and_versions() -> None:
    names = [c.name for c in DEFAULT_CATALOGERS]
    assert len(set(names)) == len(names) >= 6
    assert "java-archive-cataloger" in names
    assert all(c.version and (c.globs or content_match(c)) and c.max_file_size > 0 for c in DEFAULT_CATALOGERS)
    assert all(g.startswith(("/", "**/")) for c in DEFAULT_CATALOGERS for g in c.globs)


def test_catalogers_by_name_keeps_the_order_given() -> None:
    chosen = catalogers_by_name(["npm-installed-package-cataloger", "dpkg-db-cataloger"])
    assert [type(c) for c in chosen] == [NpmCataloger, DpkgCataloger]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "no catalogers"),
        (["nope"], "unknown cataloger 'nope'"),
        (["apk-db-cataloger", "apk-db-cataloger"], "named twice"),
    ],
)
def test_catalogers_by_name_refuses_misuse(names: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        catalogers_by_name(names)


GLOB_CASES: list[tuple[Cataloger, str, bool]] = [
    (DpkgCataloger(), "/var/lib/dpkg/status", True),
    (DpkgCataloger(), "/var/lib/dpkg/status-old", False),
    (DpkgCataloger(), "/var/lib/dpkg/status.d/libc6.md5sums", True),
    (DpkgCataloger(), "/var/lib/dpkg/info/libc6:amd64.list", True),
    (DpkgCataloger(), "/var/lib/dpkg/info/libc6:amd64.md5sums", False),
    (DpkgCataloger(), "/chroot/var/lib/dpkg/status", False),
    (ApkCataloger(), "/lib/apk/db/installed", True),
    (RpmCataloger(), "/var/lib/rpm/rpmdb.sqlite", True),
    (RpmCataloger(), "/usr/lib/sysimage/rpm/rpmdb.sqlite", True),
    (RpmCataloger(), "/var/lib/rpm/rpmdb.sqlite-wal", False),
    (PythonCataloger(), "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", True),
    (PythonCataloger(), "/opt/venv/lib/python3.11/site-packages/a.egg-info/PKG-INFO", True),
    (PythonCataloger(), "/usr/lib/python3/dist-packages/crit-3.17.1-py3.11.egg-info", True),
    (PythonCataloger(), "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD", False),
    (NpmCataloger(), "/srv/app/node_modules/is-number/package.json", True),
    (NpmCataloger(), "/srv/app/node_modules/@types/node/package.json", True),
    (NpmCataloger(), "/usr/lib/node_modules/npm/node_modules/abbrev/package.json", True),
    (NpmCataloger(), "/usr/lib/node_modules/npm/node_modules/glob/dist/esm/package.json", False),
    (NpmCataloger(), "/srv/app/package.json", False),
]


@pytest.mark.parametrize(("cataloger", "path", "wanted"), GLOB_CASES)
def test_globs(cataloger: Cataloger, path: str, wanted: bool) -> None:
    assert any(glob_matches(g, path) for g in cataloger.globs) is wanted


@pytest.mark.parametrize(
    ("listed", "owned"),
    [
        (["/."], []),
        (["./usr//lib/p/a-1.dist-info/"], ["/usr/lib/p/a-1.dist-info", "/usr/lib/p/a-1.dist-info/METADATA"]),
        (["/p/a-1.dist-info/RECORD", "/p/a-1.dist-info/METADATA"], ["/p/a-1.dist-info/METADATA"]),
        (["/p/a.egg-info"], ["/p/a.egg-info", "/p/a.egg-info/PKG-INFO"]),
        (["/p/METADATA", "/p/PKG-INFO", "/package.json"], []),
        (
            ["/n/node_modules/@s/x/package.json", "/n/node_modules/x/package.json"],
            ["/n/node_modules/@s/x/package.json", "/n/node_modules/x/package.json"],
        ),
        (["/n/node_modules/x/lib/package.json", "/n/node_modules/@s/package.json"], []),
    ],
)
def test_language_metadata_paths(listed: list[str], owned: list[str]) -> None:
    assert language_metadata_paths(listed) == tuple(owned)

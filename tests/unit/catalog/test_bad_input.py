"""Every cataloger on input that is not what it expects: a CatalogError or a skip, nothing else."""

from __future__ import annotations

import pytest

from patchline.catalog import (
    ApkCataloger,
    Cataloger,
    CatalogError,
    DpkgCataloger,
    FileResult,
    NpmCataloger,
    PythonCataloger,
    RpmCataloger,
)

GARBAGE = bytes(range(256)) * 8  # NUL bytes, control characters, invalid UTF-8
NOT_UTF8 = "caf\xe9 na\xefve\n".encode("latin-1") * 20

ERROR = "error"
EMPTY = "no packages, no skips"
SKIP = "one skip"

# (cataloger, path, data, outcome)
CASES: list[tuple[Cataloger, str, bytes, str]] = [
    (DpkgCataloger(), "/var/lib/dpkg/status", b"", EMPTY),
    (DpkgCataloger(), "/var/lib/dpkg/status", GARBAGE, ERROR),
    (DpkgCataloger(), "/var/lib/dpkg/status", NOT_UTF8, SKIP),
    (DpkgCataloger(), "/var/lib/dpkg/status.d/libc6", b"", EMPTY),
    (DpkgCataloger(), "/var/lib/dpkg/info/libc6:amd64.list", b"", EMPTY),
    (DpkgCataloger(), "/var/lib/dpkg/info/libc6:amd64.list", GARBAGE, ERROR),
    (DpkgCataloger(), "/var/lib/dpkg/info/libc6:amd64.list", NOT_UTF8, EMPTY),
    (ApkCataloger(), "/lib/apk/db/installed", b"", EMPTY),
    (ApkCataloger(), "/lib/apk/db/installed", GARBAGE, ERROR),
    (ApkCataloger(), "/lib/apk/db/installed", NOT_UTF8, SKIP),
    (RpmCataloger(), "/var/lib/rpm/rpmdb.sqlite", b"", ERROR),
    (RpmCataloger(), "/var/lib/rpm/rpmdb.sqlite", GARBAGE, ERROR),
    (RpmCataloger(), "/var/lib/rpm/rpmdb.sqlite", NOT_UTF8, ERROR),
    (RpmCataloger(), "/var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0" + GARBAGE, ERROR),
    (PythonCataloger(), "/x/a-1.dist-info/METADATA", b"", SKIP),
    (PythonCataloger(), "/x/a-1.dist-info/METADATA", GARBAGE, SKIP),
    (PythonCataloger(), "/x/a-1.dist-info/METADATA", NOT_UTF8, SKIP),
    (NpmCataloger(), "/x/node_modules/a/package.json", b"", ERROR),
    (NpmCataloger(), "/x/node_modules/a/package.json", GARBAGE, ERROR),
    (NpmCataloger(), "/x/node_modules/a/package.json", NOT_UTF8, ERROR),
    (NpmCataloger(), "/x/node_modules/a/package.json", b"[" * 100_000, ERROR),
    (NpmCataloger(), "/x/node_modules/a/package.json", b'["a", "b"]', ERROR),
    (NpmCataloger(), "/x/node_modules/a/package.json", b'{"name": 3, "version": "1"}', SKIP),
]


@pytest.mark.parametrize(
    ("cataloger", "path", "data", "outcome"),
    CASES,
    ids=[f"{c.name}-{p.rsplit('/', 1)[1]}-{len(d)}b-{o}" for c, p, d, o in CASES],
)
def test_bad_input(cataloger: Cataloger, path: str, data: bytes, outcome: str) -> None:
    if outcome == ERROR:
        with pytest.raises(CatalogError) as info:
            cataloger.parse(path, data)
        message = str(info.value)
        assert message and "\n" not in message
        return
    result = cataloger.parse(path, data)
    if outcome == EMPTY:
        assert result == FileResult()
    else:
        assert result.packages == ()
        assert len(result.skipped) == 1

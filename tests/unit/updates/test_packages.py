"""The fast Packages parser agrees with python-debian on a trimmed real index."""

from __future__ import annotations

from pathlib import Path

import pytest
from debian.deb822 import Packages

from patchline.errors import IndexFormatError
from patchline.updates._packages import load_parsed, parse_packages, store_parsed

DATA = Path(__file__).resolve().parents[2] / "data" / "updates"
FIXTURE = DATA / "Packages-bookworm-security-200"  # every 15th stanza of the live index


def test_fast_parser_agrees_with_deb822_on_a_real_index() -> None:
    text = FIXTURE.read_text()
    ours = parse_packages(text)
    theirs = list(Packages.iter_paragraphs(text.splitlines(keepends=True), use_apt_pkg=False))
    assert len(ours) == len(theirs) == 200
    for mine, para in zip(ours, theirs, strict=True):
        src_name, _, rest = para.get("Source", para["Package"]).partition(" ")
        assert mine.name == para["Package"]
        assert mine.version == para["Version"]
        assert mine.arch == para["Architecture"]
        assert mine.source_name == src_name
        assert mine.source_version == (rest.strip("() ") or para["Version"])
        assert mine.filename == para["Filename"]
        assert mine.sha256 == para["SHA256"]
        assert mine.size == int(para["Size"])
        for field, attr in [("Depends", "depends"), ("Pre-Depends", "pre_depends"), ("Breaks", "breaks"),
                            ("Conflicts", "conflicts"), ("Provides", "provides")]:  # fmt: skip
            assert getattr(mine, attr) == para.get(field, ""), (mine.name, field)


def test_source_with_version_and_folded_relations() -> None:
    text = (
        "Package: libfoo1\nVersion: 1.2-3+b1\nSource: foo (1.2-3)\nArchitecture: amd64\n"
        "Depends: libc6 (>= 2.34),\n libbar1\nDescription: x\n long text: with a colon\n"
    )
    (pkg,) = parse_packages(text)
    assert (pkg.source_name, pkg.source_version) == ("foo", "1.2-3")
    assert pkg.depends == "libc6 (>= 2.34), libbar1"


def test_stanza_without_version_is_refused_or_skipped() -> None:
    text = "Package: a\nVersion: 1\n\nPackage: purged\nStatus: purge ok not-installed\n"
    with pytest.raises(IndexFormatError, match="stanza 2 has no Package or Version"):
        parse_packages(text)
    assert [p.name for p in parse_packages(text, skip_incomplete=True)] == ["a"]


def test_parsed_cache_round_trip(tmp_path: Path) -> None:
    packages = parse_packages(FIXTURE.read_text())
    assert load_parsed(tmp_path, "ab" * 32) is None
    store_parsed(tmp_path, "ab" * 32, packages)
    assert load_parsed(tmp_path, "ab" * 32) == packages
    next((tmp_path / "parsed").iterdir()).write_text("[[torn")
    assert load_parsed(tmp_path, "ab" * 32) is None

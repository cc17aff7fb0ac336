"""Relation parsing and satisfaction, as dpkg and apt define them."""

from __future__ import annotations

import pytest

from patchline.errors import IndexFormatError
from patchline.updates._relations import Installed, Relation, World, parse_provides, parse_relations, relation_holds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("libc6", ((Relation("libc6"),),)),
        ("libc6 (>= 2.36)", ((Relation("libc6", None, ">=", "2.36"),),)),
        ("a | b (<< 2), c:any", ((Relation("a"), Relation("b", None, "<<", "2")), (Relation("c", "any"),))),
        ("python3:native (>= 3.11~)", ((Relation("python3", "native", ">=", "3.11~"),),)),
        ("perl (>=5.36.0-7+deb12u1)", ((Relation("perl", None, ">=", "5.36.0-7+deb12u1"),),)),
        ("foo [!amd64], bar [amd64 arm64] <!nocheck>", ((Relation("bar"),),)),
        ("", ()),
    ],
)
def test_parse_relations(text: str, expected: tuple[tuple[Relation, ...], ...]) -> None:
    assert parse_relations(text) == expected


def test_bad_relation_is_refused() -> None:
    with pytest.raises(IndexFormatError, match="cannot parse"):
        parse_relations("foo (~~ 1)")
    with pytest.raises(IndexFormatError, match="only '='"):
        parse_provides("foo (>= 1)")


@pytest.mark.parametrize(
    ("version", "op", "wanted", "holds"),
    [
        ("1.0-1", "<<", "1.0-2", True),
        ("1.0-2", "<<", "1.0-2", False),
        ("1.0-2", "<=", "1.0-2", True),
        ("1.0-2", "=", "1.0-2", True),
        ("1:1.0", ">>", "2.0", True),  # epoch
        ("1.0~rc1", ">=", "1.0", False),  # tilde sorts before everything
        ("1.0+deb12u1", ">>", "1.0", True),
        ("2.0", "<", "2.0", True),  # obsolete "<" means "<="
        ("2.0", ">", "2.0", True),  # obsolete ">" means ">="
    ],
)
def test_relation_holds(version: str, op: str, wanted: str, holds: bool) -> None:
    assert relation_holds(version, op, wanted) is holds


WORLD = World(
    [
        Installed("libc6", "2.36-9+deb12u4", "amd64"),
        Installed("mawk", "1.3.4-1", "amd64", provides="awk"),
        Installed("libfoo-abi", "3.0", "amd64", provides="foo-abi (= 3)"),
        Installed("tzdata", "2024a-0", "all"),
        Installed("lib32thing", "1.0", "i386"),
    ],
    native_arch="amd64",
)


@pytest.mark.parametrize(
    ("depends", "satisfied"),
    [
        ("libc6 (>= 2.36)", True),
        ("libc6 (>= 2.37)", False),
        ("libc6 (>= 2.37) | mawk", True),  # an alternative
        ("awk", True),  # unversioned Provides
        ("awk (>= 1)", False),  # an unversioned Provides never satisfies a versioned relation
        ("foo-abi (= 3)", True),  # a versioned Provides does
        ("foo-abi (>= 4)", False),
        ("tzdata:any", True),
        ("libc6:native", True),
        ("lib32thing:amd64", False),
        ("lib32thing:i386", True),
        ("notinstalled", False),
        ("libc6, notinstalled", False),
    ],
)
def test_satisfaction(depends: str, satisfied: bool) -> None:
    assert (WORLD.unsatisfied(depends) == []) is satisfied


def test_conflicts_ignore_the_package_itself() -> None:
    mawk = Installed("mawk", "1.3.4-1", "amd64", provides="awk", conflicts="awk")
    world = World([mawk, Installed("gawk", "5.2", "amd64", provides="awk")], native_arch="amd64")
    assert [p.name for p in world.conflicting(mawk, mawk.conflicts)] == ["gawk"]

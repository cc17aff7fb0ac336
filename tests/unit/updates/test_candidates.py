"""apt's candidate choice and ``upgrade``'s keep-back rule, on in-memory indexes."""

from __future__ import annotations

from patchline._model import Ecosystem, Package, Purl
from patchline.updates import BinaryPackage, PackagesIndex, plan_upgrade


def _pkg(name: str, version: str, arch: str = "amd64") -> Package:
    return Package(Ecosystem.DEB, name, version, Purl(f"pkg:deb/debian/{name}@{version}"), 0, 0, (), arch=arch)


def _bin(name: str, version: str, *, arch: str = "amd64", source: str | None = None, **rel: str) -> BinaryPackage:
    return BinaryPackage(name, version, arch, source or name, version, f"pool/{name}.deb", "0" * 64, 1, **rel)


def _index(suite: str, *packages: BinaryPackage) -> PackagesIndex:
    return PackagesIndex.build(url="http://repo.invalid", suite=suite, component="main", arch="amd64",
                               sha256="0" * 64, packages=packages)  # fmt: skip


def test_highest_newer_version_wins_across_suites_and_never_downgrades() -> None:
    sec = _index("s-security", _bin("a", "1.0-2"), _bin("b", "0.9"), _bin("c", "1.0-1", arch="i386"))
    upd = _index("s-updates", _bin("a", "1.0-3"))
    plan = plan_upgrade([_pkg("a", "1.0-1"), _pkg("b", "1.0"), _pkg("c", "1.0-0")], [sec, upd])
    assert [(u.package.name, u.candidate, u.suite) for u in plan.pending] == [("a", "1.0-3", "s-updates")]


def test_kept_back_cascades_to_a_fixpoint() -> None:
    # b's update needs a package that is not installed; a's update needs b's update.
    idx = _index("s", _bin("a", "2", depends="b (>= 2)"), _bin("b", "2", depends="new"), _bin("c", "2"))
    plan = plan_upgrade([_pkg("a", "1"), _pkg("b", "1"), _pkg("c", "1")], [idx])
    assert [u.package.name for u in plan.pending] == ["c"]
    assert {k.package.name for k in plan.kept_back} == {"a", "b"}


def test_upgrade_that_breaks_an_installed_dependency_is_kept_back() -> None:
    status = "Package: client\nVersion: 1\nArchitecture: amd64\nDepends: lib (<< 2)\n"
    idx = _index("s", _bin("lib", "2"))
    plan = plan_upgrade([_pkg("client", "1"), _pkg("lib", "1")], [idx], dpkg_status=status)
    assert plan.pending == ()
    assert "client" in plan.kept_back[0].reason


def test_grouped_by_source_and_arch_all() -> None:
    idx = _index("s", _bin("libx1", "2", source="x"), _bin("x-data", "2", arch="all", source="x"))
    plan = plan_upgrade([_pkg("libx1", "1"), _pkg("x-data", "1", arch="all")], [idx])
    assert {(u.package.name, u.source_name, u.source_version) for u in plan.pending} == {
        ("libx1", "x", "2"),
        ("x-data", "x", "2"),
    }
    assert [d.filename for d in plan.debs] == ["pool/libx1.deb", "pool/x-data.deb"]

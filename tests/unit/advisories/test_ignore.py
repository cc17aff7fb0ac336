"""Ignore rules (patchline.toml) with expiry, and OpenVEX statements."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from patchline.advisories import (
    IgnoreRule,
    VexDocument,
    apply_ignores,
    expired_rules,
    ignore_rules_from_config,
    purl_matches,
)
from patchline.assess.model import AdvisoryId, Finding, PackageRef, Severity
from patchline.errors import ConfigError, VexError

TODAY = dt.date(2026, 11, 23)
URLLIB3 = PackageRef("pypi", "urllib3", "1.26.6", "pkg:pypi/urllib3@1.26.6")
LIBC6 = PackageRef(
    "deb", "libc6", "2.36-9+deb12u1", "pkg:deb/debian/libc6@2.36-9%2Bdeb12u1?arch=amd64&distro=debian-12",
    source_name="glibc",
)  # fmt: skip


def finding(advisory: str, package: PackageRef, *aliases: str) -> Finding:
    return Finding(AdvisoryId(advisory), tuple(sorted(aliases)), package, (), Severity.HIGH)


F_URLLIB3 = finding("PYSEC-2023-192", URLLIB3, "CVE-2023-43804", "GHSA-v845-jxx5-vc9f")
F_LIBC = finding("DEBIAN-CVE-2023-4911", LIBC6, "CVE-2023-4911")


@pytest.mark.parametrize(
    ("rule", "ignored"),
    [
        ({"id": "PYSEC-2023-192", "reason": "not reachable"}, {"PYSEC-2023-192"}),
        ({"id": "CVE-2023-43804", "reason": "by alias"}, {"PYSEC-2023-192"}),
        ({"id": "CVE-2023-43804", "reason": "other package", "package": "requests"}, set()),
        ({"id": "CVE-2023-43804", "reason": "by name", "package": "URLLib3"}, {"PYSEC-2023-192"}),
        ({"id": "CVE-2023-4911", "reason": "by source", "package": "glibc"}, {"DEBIAN-CVE-2023-4911"}),
        ({"id": "CVE-2023-43804", "reason": "by purl", "package": "pkg:pypi/urllib3"}, {"PYSEC-2023-192"}),
        ({"id": "CVE-2023-43804", "reason": "other version", "package": "pkg:pypi/urllib3@2.0.0"}, set()),
        ({"id": "CVE-2023-43804", "reason": "until today", "expires": dt.date(2026, 11, 23)}, {"PYSEC-2023-192"}),
        ({"id": "CVE-2023-43804", "reason": "expired", "expires": "2026-11-22"}, set()),
    ],
)
def test_ignore_rules(rule: dict[str, object], ignored: set[str]) -> None:
    rules = ignore_rules_from_config([rule])
    kept, moved = apply_ignores([F_URLLIB3, F_LIBC], rules, [], today=TODAY)
    assert {i.finding.advisory for i in moved} == ignored
    assert len(kept) + len(moved) == 2
    assert all(i.rule == "patchline.toml" and i.reason == rule["reason"] for i in moved)


def test_expired_rules_are_reported() -> None:
    rules = ignore_rules_from_config(
        [
            {"id": "A", "reason": "old", "expires": "2026-01-01"},
            {"id": "B", "reason": "current", "expires": "2027-01-01"},
            {"id": "C", "reason": "forever"},
        ]
    )
    assert [r.id for r in expired_rules(rules, today=TODAY)] == ["A"]
    assert rules[1] == IgnoreRule(id="B", reason="current", expires=dt.date(2027, 1, 1))


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"reason": "no id"}], "needs an id"),
        ([{"id": "X"}], "needs a reason"),
        ([{"id": "X", "reason": "r", "expires": "next week"}], "expires must be a date"),
        ([{"id": "X", "reason": "r", "until": "2026-01-01"}], "unknown keys until"),
        ({"id": "X"}, "must be a list"),
    ],
)
def test_bad_ignore_rules_are_config_errors(items: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ignore_rules_from_config(items)


# An OpenVEX v0.2.0 document as vexctl writes it: the image is the product, packages are subcomponents.
VEX = {
    "@context": "https://openvex.dev/ns/v0.2.0",
    "@id": "https://example.com/vex/app-2026-11-01",
    "author": "Platform Security <security@example.com>",
    "timestamp": "2026-11-01T10:00:00Z",
    "version": 1,
    "statements": [
        {
            "vulnerability": {"name": "CVE-2023-43804", "aliases": ["GHSA-v845-jxx5-vc9f"]},
            "products": [
                {
                    "@id": "pkg:oci/app@sha256%3A0123456789abcdef?repository_url=registry.example.com/app",
                    "subcomponents": [{"@id": "pkg:pypi/urllib3"}],
                }
            ],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
            "impact_statement": "The app never sets Cookie headers on redirected requests.",
        },
        {
            "vulnerability": {"name": "CVE-2023-4911"},
            "products": [{"@id": "pkg:deb/debian/libc6?arch=amd64"}],
            "status": "under_investigation",
        },
        {
            "vulnerability": {"name": "CVE-2023-4911"},
            "products": [{"@id": "pkg:deb/debian/libc6?arch=arm64"}],
            "status": "fixed",
        },
    ],
}


def test_openvex_document(tmp_path: Path) -> None:
    path = tmp_path / "app.openvex.json"
    path.write_text(json.dumps(VEX))
    doc = VexDocument.load(path)
    kept, moved = apply_ignores([F_URLLIB3, F_LIBC], [], [doc], today=TODAY)
    assert [f.advisory for f in kept] == ["DEBIAN-CVE-2023-4911"]  # under_investigation stays; arm64 is not ours
    (ignored,) = moved
    assert ignored.finding == F_URLLIB3
    assert ignored.rule == "https://example.com/vex/app-2026-11-01"
    assert ignored.reason == "VEX not_affected: vulnerable_code_not_in_execute_path"


def test_later_vex_statement_overrides() -> None:
    later = {
        **VEX,
        "@id": "https://example.com/vex/app-2026-11-20",
        "timestamp": "2026-11-20T10:00:00Z",
        "statements": [
            {"vulnerability": {"name": "CVE-2023-43804"}, "products": [{"@id": "pkg:pypi/urllib3@1.26.6"}],
             "status": "affected", "action_statement": "Upgrade urllib3 to 1.26.17"},
        ],
    }  # fmt: skip
    docs = [VexDocument.from_json(VEX, source="a"), VexDocument.from_json(later, source="b")]
    kept, moved = apply_ignores([F_URLLIB3], [], docs, today=TODAY)
    assert (kept, moved) == ([F_URLLIB3], [])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("@context"), "no OpenVEX @context"),
        (lambda d: d["statements"][0].update(status="maybe"), "has status 'maybe'"),
        (lambda d: d["statements"][0].pop("justification") and d["statements"][0].pop("impact_statement"),
         "without a justification"),
        (lambda d: d["statements"][0].update(products=[]), "names no products"),
    ],
)  # fmt: skip
def test_bad_vex_documents(mutate: object, message: str) -> None:
    doc = json.loads(json.dumps(VEX))
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(VexError, match=message):
        VexDocument.from_json(doc, source="bad.json")


@pytest.mark.parametrize(
    ("pattern", "purl", "matches"),
    [
        ("pkg:pypi/urllib3", "pkg:pypi/urllib3@1.26.6", True),
        ("pkg:pypi/URLLib3@1.26.6", "pkg:pypi/urllib3@1.26.6", True),
        ("pkg:pypi/urllib3@1.26.5", "pkg:pypi/urllib3@1.26.6", False),
        ("pkg:deb/debian/libc6", "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12", True),
        ("pkg:deb/debian/libc6?arch=amd64", "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12", True),
        ("pkg:deb/debian/libc6?arch=arm64", "pkg:deb/debian/libc6@2.36-9?arch=amd64", False),
        ("pkg:deb/ubuntu/libc6", "pkg:deb/debian/libc6@2.36-9", False),
        ("pkg:npm/libc6", "pkg:deb/debian/libc6@2.36-9", False),
    ],
)
def test_purl_matching(pattern: str, purl: str, matches: bool) -> None:
    assert purl_matches(pattern, purl) is matches

"""CVSS scores of advisory vectors: v2, v3.0, v3.1 and v4.0, with the version actually scored.

The v3 and v4 rows are lines of the ``cvss`` library's own reference files
(RedHatProductSecurity/cvss ``tests/vectors_simple3``, ``vectors_simple31``,
``vectors_simple4``, ``test_cvss4.py``: base scores); the v2 rows are the
CVSS v2 guide's examples.
"""

from __future__ import annotations

import pytest

from patchline.advisories import Advisory
from patchline.advisories._cvss import InvalidVector, base_score, score_vector
from patchline.advisories.osv import parse_record
from patchline.assess.model import Severity


@pytest.mark.parametrize(
    ("vector", "score", "version"),
    [
        # vectors_simple4
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:H/VA:L/SC:N/SI:H/SA:L", 9.2, "4.0"),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:H/SI:N/SA:L", 7.8, "4.0"),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:L/VI:N/VA:N/SC:L/SI:N/SA:L", 5.3, "4.0"),
        ("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:N/SA:N", 2.1, "4.0"),
        ("CVSS:4.0/AV:N/AC:H/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:L/SA:N", 9.5, "4.0"),
        ("CVSS:4.0/AV:N/AC:L/AT:P/PR:H/UI:A/VC:N/VI:L/VA:L/SC:L/SI:N/SA:N", 1.8, "4.0"),
        # test_cvss4.py
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", 8.7, "4.0"),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N/AR:L", 7.9, "4.0"),
        ("CVSS:4.0/AV:A/AC:H/AT:P/PR:L/UI:P/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0.0, "4.0"),
        # vectors_simple31
        ("CVSS:3.1/AV:A/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", 8.3, "3.1"),
        ("CVSS:3.1/AV:A/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 2.6, "3.1"),
        ("CVSS:3.1/AV:A/AC:H/PR:L/UI:R/S:C/C:L/I:L/A:N", 4.0, "3.1"),
        ("CVSS:3.1/AV:A/AC:H/PR:H/UI:N/S:C/C:H/I:L/A:L", 6.8, "3.1"),
        # vectors_simple3
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:L/A:L", 9.9, "3.0"),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:N/A:N", 4.7, "3.0"),
        ("CVSS:3.0/AV:N/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N", 3.5, "3.0"),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "3.0"),
        # CVSS v2 guide
        ("AV:N/AC:L/Au:N/C:N/I:N/A:C", 7.8, "2.0"),  # CVE-2002-0392
        ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, "2.0"),  # CVE-2003-0818
        ("AV:L/AC:H/Au:N/C:C/I:C/A:C", 6.2, "2.0"),  # CVE-2003-0062
        ("(AV:N/AC:L/Au:N/C:N/I:N/A:C/E:F/RL:OF/RC:C)", 7.8, "2.0"),  # temporal metrics: not base
        ("CVSS:2.0/AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3, "2.0"),
    ],
)
def test_scores_agree_with_the_reference_vectors(vector: str, score: float, version: str) -> None:
    assert base_score(vector) == (score, version)
    osv_type = {"4.0": "CVSS_V4", "2.0": "CVSS_V2"}.get(version, "CVSS_V3")
    scored = score_vector(osv_type, vector)
    assert (scored.score, scored.version, scored.severity) == (score, version, Severity.from_score(score))


def test_a_v3_0_vector_is_reported_as_3_0_not_3_1() -> None:
    doc = {"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": [],
           "severity": [
               {"type": "CVSS_V3", "score": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
               {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
           ]}
    (advisory,) = parse_record(doc, what="x")
    assert isinstance(advisory, Advisory)
    assert [(s.type, s.version, s.score) for s in advisory.severity] == [("CVSS_V3", "3.0", 9.8),
                                                                         ("CVSS_V4", "4.0", 9.3)]


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # bad value
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",  # twice
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",  # unknown metric
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:J",  # bad v4 value
        "CVSS:5.0/AV:N",  # no such version
        "garbage",
        "",
    ],
)
def test_malformed_vectors_are_refused(vector: str) -> None:
    with pytest.raises(InvalidVector):
        base_score(vector)
    unscored = score_vector("CVSS_V3", vector)
    assert (unscored.severity, unscored.score, unscored.version, unscored.vector) == (
        Severity.UNKNOWN, None, None, vector)


def test_words_as_scores() -> None:
    assert score_vector("Ubuntu", "medium").severity is Severity.MEDIUM
    assert score_vector("Ubuntu", "medium").version is None

"""CVSS scores of OSV ``severity[]`` vectors, computed by the ``cvss`` library (v2, v3.0, v3.1, v4.0).

The version scored is the vector's own (``CVSS:3.0/...`` is 3.0, not 3.1; a
bare v2 vector is 2.0), whatever ``type`` the record gives it. A v4 vector's
score is the spec's CVSS-B (or -BT/-BE/-BTE when it carries those metrics). A
vector the library refuses is an UNKNOWN score that keeps the vector.
"""

from __future__ import annotations

from decimal import Decimal

from cvss import CVSS2, CVSS3, CVSS4, CVSSError

from patchline._findings import Severity, SeverityScore

__all__ = ["InvalidVector", "base_score", "score_vector"]


class InvalidVector(ValueError):
    """A CVSS vector string is malformed (internal; becomes an UNKNOWN score)."""


def base_score(vector: str) -> tuple[float, str]:
    """(score, CVSS version) of a vector: ``CVSS:4.0/...``, ``CVSS:3.x/...``, or v2 (bare, ``(...)`` or
    ``CVSS:2.0/...``). Raises :class:`InvalidVector` when the library refuses it."""
    text = vector.strip()
    try:
        if text.startswith("CVSS:4.0/"):
            return _float(CVSS4(text).base_score), "4.0"
        if text.startswith("CVSS:3."):
            v3 = CVSS3(text)
            return _float(v3.base_score), f"3.{v3.minor_version}"
        if text.startswith("CVSS:") and not text.startswith("CVSS:2.0/"):
            raise InvalidVector(f"unsupported CVSS version: {text.split('/', 1)[0]}")
        bare = text.removeprefix("(").removesuffix(")").removeprefix("CVSS:2.0/")
        return _float(CVSS2(bare).base_score), "2.0"
    except CVSSError as exc:
        raise InvalidVector(str(exc)) from exc
    except (ValueError, KeyError, IndexError) as exc:  # the library's own checks miss a few shapes
        raise InvalidVector(f"malformed CVSS vector {text!r}: {exc}") from exc


def _float(value: Decimal | float | None) -> float:
    if value is None:
        raise InvalidVector("no base score")
    return float(value)


_VECTOR_TYPES = ("CVSS_V2", "CVSS_V3", "CVSS_V4")


def score_vector(osv_type: str, vector: str) -> SeverityScore:
    """One OSV ``severity[]`` entry as a :class:`SeverityScore` (UNKNOWN if it cannot be scored)."""
    if osv_type not in _VECTOR_TYPES:  # "Ubuntu" and other words-as-scores
        return SeverityScore(Severity.parse(vector), osv_type, None, None)
    try:
        score, version = base_score(vector)
    except InvalidVector:
        return SeverityScore(Severity.UNKNOWN, osv_type, vector, None)
    return SeverityScore(Severity.from_score(score), osv_type, vector, score, version=version)

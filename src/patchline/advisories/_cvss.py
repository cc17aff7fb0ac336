"""CVSS base scores computed from vectors: v3.0 / v3.1 and v2, exactly per their specs.

v4.0 vectors are validated and kept, but not scored: the v4 score needs the
spec's macro-vector lookup table and interpolation, which is not implemented;
the advisory's own severity word is used instead (``score`` is ``None``).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from patchline.assess.model import Severity, SeverityScore

__all__ = ["InvalidVector", "cvss2_base_score", "cvss3_base_score", "roundup_v30", "roundup_v31", "score_vector"]


class InvalidVector(ValueError):
    """A CVSS vector string is malformed (internal; becomes an UNKNOWN score)."""


_V3_BASE = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    "S": {"U": 0.0, "C": 0.0},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}
_V3_OTHER = {  # temporal and environmental metrics: allowed, not part of the base score
    "E", "RL", "RC", "CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA",
}  # fmt: skip

_V2_BASE = {
    "AV": {"L": 0.395, "A": 0.646, "N": 1.0},
    "AC": {"H": 0.35, "M": 0.61, "L": 0.71},
    "Au": {"M": 0.45, "S": 0.56, "N": 0.704},
    "C": {"N": 0.0, "P": 0.275, "C": 0.660},
    "I": {"N": 0.0, "P": 0.275, "C": 0.660},
    "A": {"N": 0.0, "P": 0.275, "C": 0.660},
}
_V2_OTHER = {"E", "RL", "RC", "CDP", "TD", "CR", "IR", "AR"}

_V4_BASE = {
    "AV": "NALP", "AC": "LH", "AT": "NP", "PR": "NLH", "UI": "NPA",
    "VC": "HLN", "VI": "HLN", "VA": "HLN", "SC": "HLN", "SI": "HLN", "SA": "HLN",
}  # fmt: skip


def roundup_v31(value: float) -> float:
    """CVSS v3.1 Roundup (spec Appendix A): smallest one-decimal number >= value, float-safe."""
    int_input = round(value * 100000)
    if int_input % 10000 == 0:
        return int_input / 100000.0
    return (math.floor(int_input / 10000) + 1) / 10.0


def roundup_v30(value: float) -> float:
    """CVSS v3.0 Round up: ceil to one decimal."""
    return math.ceil(value * 10) / 10


def _metrics(parts: list[str], *, allowed: set[str]) -> dict[str, str]:
    metrics: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition(":")
        if not sep or not value:
            raise InvalidVector(f"metric {part!r} is not KEY:VALUE")
        if key in metrics:
            raise InvalidVector(f"metric {key} appears twice")
        if key not in allowed:
            raise InvalidVector(f"unknown metric {key}")
        metrics[key] = value
    return metrics


def cvss3_base_score(vector: str) -> float:
    """Base score of a ``CVSS:3.0/...`` or ``CVSS:3.1/...`` vector; ``InvalidVector`` if malformed."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise InvalidVector(f"not a CVSS v3 vector: {vector!r}")
    m = _metrics(rest.split("/"), allowed=set(_V3_BASE) | _V3_OTHER)
    values: dict[str, float] = {}
    for key, table in _V3_BASE.items():
        if key not in m:
            raise InvalidVector(f"base metric {key} missing")
        if m[key] not in table:
            raise InvalidVector(f"{key}:{m[key]} is not a valid value")
        values[key] = table[m[key]]
    changed = m["S"] == "C"
    if changed:
        values["PR"] = _PR_CHANGED[m["PR"]]
    roundup = roundup_v31 if prefix == "CVSS:3.1" else roundup_v30
    iss = 1 - (1 - values["C"]) * (1 - values["I"]) * (1 - values["A"])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    exploitability = 8.22 * values["AV"] * values["AC"] * values["PR"] * values["UI"]
    if impact <= 0:
        return 0.0
    if changed:
        return roundup(min(1.08 * (impact + exploitability), 10))
    return roundup(min(impact + exploitability, 10))


def cvss2_base_score(vector: str) -> float:
    """Base score of a CVSS v2 vector (``AV:N/AC:L/Au:N/C:P/I:P/A:P``, optionally ``(...)`` or ``CVSS:2.0/``)."""
    text = vector.strip().removeprefix("(").removesuffix(")").removeprefix("CVSS:2.0/")
    m = _metrics(text.split("/"), allowed=set(_V2_BASE) | _V2_OTHER)
    v: dict[str, float] = {}
    for key, table in _V2_BASE.items():
        if key not in m:
            raise InvalidVector(f"base metric {key} missing")
        if m[key] not in table:
            raise InvalidVector(f"{key}:{m[key]} is not a valid value")
        v[key] = table[m[key]]
    impact = 10.41 * (1 - (1 - v["C"]) * (1 - v["I"]) * (1 - v["A"]))
    exploitability = 20 * v["AV"] * v["AC"] * v["Au"]
    f_impact = 0.0 if impact == 0 else 1.176
    base = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f_impact
    # "round_to_1_decimal": half up; 10 digits first so float noise (x.x4999999) does not decide.
    return float(Decimal(repr(round(base, 10))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _validate_v4(vector: str) -> None:
    prefix, _, rest = vector.strip().partition("/")
    if prefix != "CVSS:4.0":
        raise InvalidVector(f"not a CVSS v4 vector: {vector!r}")
    allowed_other = {
        "E", "CR", "IR", "AR", "MAV", "MAC", "MAT", "MPR", "MUI", "MVC", "MVI", "MVA", "MSC", "MSI", "MSA",
        "S", "AU", "R", "V", "RE", "U",
    }  # fmt: skip
    m = _metrics(rest.split("/"), allowed=set(_V4_BASE) | allowed_other)
    for key, values in _V4_BASE.items():
        if key not in m:
            raise InvalidVector(f"base metric {key} missing")
        if len(m[key]) != 1 or m[key] not in values:
            raise InvalidVector(f"{key}:{m[key]} is not a valid value")


def score_vector(osv_type: str, vector: str) -> SeverityScore:
    """One OSV ``severity[]`` entry as a :class:`SeverityScore` (UNKNOWN if it cannot be scored)."""
    try:
        if osv_type == "CVSS_V3":
            score = cvss3_base_score(vector)
        elif osv_type == "CVSS_V2":
            score = cvss2_base_score(vector)
        elif osv_type == "CVSS_V4":
            _validate_v4(vector)
            return SeverityScore(Severity.UNKNOWN, osv_type, vector, None)
        else:  # "Ubuntu" and other words-as-scores
            return SeverityScore(Severity.parse(vector), osv_type, None, None)
    except InvalidVector:
        return SeverityScore(Severity.UNKNOWN, osv_type, vector, None)
    return SeverityScore(Severity.from_score(score), osv_type, vector, score)

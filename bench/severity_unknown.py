"""How many advisories and findings have an unknown severity, before and after the `cvss` library and aliases.

    .venv/bin/python bench/severity_unknown.py [--snapshot DIR] [--aliases DIR ...]

- records: the share of the PyPI OSV snapshot's live records (../shared/data/osv/pypi)
  whose severity is unknown;
- findings: the same share among the findings of an image with old Django, Jinja2,
  requests, urllib3 and PyYAML (issue 16's example) against that snapshot.

"before" scores vectors with the hand-written scorer patchline had until commit
afa7e45 (read with ``git show``: v4 vectors unscored) and uses each record's own
severity only; "after" scores with the ``cvss`` library and takes a record's
severity from an alias record of the loaded alias feeds (default: the GHSA
records under tests/data/advisories/ghsa). Not a test: it prints the shares.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from patchline.advisories import AdvisoryIndex, OsvFeed, match_packages  # noqa: E402
from patchline.advisories._alias_severity import AliasSeverities  # noqa: E402
from patchline.advisories.osv import record_severity  # noqa: E402
from patchline.assess.model import PackageRef, Severity, SeverityScore  # noqa: E402

OLD_SCORER_COMMIT = "afa7e45"
IMAGE = {"Django": "3.2", "Jinja2": "2.11.2", "requests": "2.25.0", "urllib3": "1.26.4", "PyYAML": "5.3"}


def old_scorer() -> Callable[[str, str], SeverityScore] | None:
    """``score_vector`` of the hand-written scorer, from git history (None outside a clone)."""
    try:
        where = f"{OLD_SCORER_COMMIT}:src/patchline/advisories/_cvss.py"
        text = subprocess.run(["git", "-C", str(ROOT), "show", where], check=True, capture_output=True,
                              text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "old_cvss.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("old_cvss", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score_vector  # type: ignore[no-any-return]


def severity_of(scores: tuple[SeverityScore, ...]) -> Severity:
    """As ``finding_severity``: the highest computed score, else the stated words, else unknown."""
    computed = [s.severity for s in scores if s.score is not None]
    if computed:
        return max(computed)
    stated = [s.severity for s in scores if s.vector is None]
    return max(stated) if stated else Severity.UNKNOWN


def old_severity(doc: Mapping[str, Any], score: Callable[[str, str], SeverityScore]) -> Severity:
    scores = [score(e["type"], e["score"]) for e in doc.get("severity") or []
              if isinstance(e, Mapping) and isinstance(e.get("type"), str) and isinstance(e.get("score"), str)]
    word = (doc.get("database_specific") or {}).get("severity")
    if isinstance(word, str) and word.strip():
        scores.append(SeverityScore(Severity.parse(word), "record", None, None))
    return severity_of(tuple(scores))


def share(unknown: int, total: int) -> str:
    return f"{unknown}/{total} ({100 * unknown / total:.1f}%)" if total else "0/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", type=Path, default=ROOT.parent / "shared" / "data" / "osv" / "pypi" / "vulns")
    parser.add_argument("--aliases", type=Path, action="append",
                        help="an OSV feed of alias records (repeatable); default tests/data/advisories/ghsa")
    args = parser.parse_args()
    if not args.snapshot.is_dir():
        sys.exit(f"no PyPI snapshot at {args.snapshot}: pass --snapshot")
    alias_dirs = args.aliases or [ROOT / "tests" / "data" / "advisories" / "ghsa"]
    score = old_scorer()
    if score is None:
        sys.exit(f"cannot read the old scorer from git ({OLD_SCORER_COMMIT}): run this inside a clone")

    snapshot = OsvFeed(args.snapshot)
    alias_feeds = [OsvFeed(d) for d in alias_dirs]
    docs = {d["id"]: d for _, d, r in snapshot.documents() if r is None and isinstance(d, Mapping)
            and isinstance(d.get("id"), str) and not d.get("withdrawn")}
    every_doc = [*docs.values(), *(d for f in alias_feeds for _, d, r in f.documents() if r is None)]
    aliases = AliasSeverities.from_documents(every_doc)

    before = sum(old_severity(d, score) is Severity.UNKNOWN for d in docs.values())
    after = 0
    for ident, doc in docs.items():
        own = severity_of(record_severity(doc))
        if own is Severity.UNKNOWN and aliases.best_for(ident, [a for a in doc.get("aliases") or []
                                                                  if isinstance(a, str)]) is None:
            after += 1
    loaded = sum(len(f.documents()) for f in alias_feeds)
    print(f"alias records loaded: {loaded} from {', '.join(map(str, alias_dirs))}")
    print(f"records  unknown severity: before {share(before, len(docs))}, after {share(after, len(docs))}")

    index = AdvisoryIndex.build_lazy([snapshot])
    packages = [PackageRef("pypi", n, v, f"pkg:pypi/{n.lower()}@{v}") for n, v in IMAGE.items()]
    findings, _ = match_packages(packages, index, distro=None)
    findings_before = sum(old_severity(docs[f.advisory], score) is Severity.UNKNOWN for f in findings)
    filled = aliases.fill(findings)
    findings_after = sum(f.severity is Severity.UNKNOWN for f in filled)
    image = ", ".join(f"{n} {v}" for n, v in IMAGE.items())
    print(f"findings unknown severity ({image}): before {share(findings_before, len(findings))}, "
          f"after {share(findings_after, len(filled))}")
    borrowed = sorted({f.severity_source for f in filled if f.severity_source})
    print(f"severities taken from an alias: {len(borrowed)} record(s): {', '.join(borrowed) or '-'}")
    named = [f for f in filled if f.severity is Severity.UNKNOWN and any(a.startswith("GHSA-") for a in f.aliases)]
    print(f"still unknown but naming a GHSA alias (the GHSA feed would give them one): {len(named)}")


if __name__ == "__main__":
    main()

"""Re-assess the fleet from the store when feeds or update sources change, without reading an image.

Advisory feeds: :meth:`Store.refresh_feed` diffs each feed against the stored
records and recomputes only what the changed ones name. Update sources: the
stored inventories of the Debian images are grouped by the suites they take
updates from; each group's indexes are loaded once and every image of the group
is planned against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patchline.errors import Error

if TYPE_CHECKING:
    from patchline.assess import AssessOptions, ScanInput
    from patchline.store import RefreshResult, Store
    from patchline.updates import AptSuite

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class UpdateRefresh:
    """What re-computing pending updates did."""

    groups: tuple[tuple[str, str, str], ...]  # (sources, revision, previous revision)
    images: int
    pending: int
    images_with_pending: int
    skipped: tuple[tuple[str, str], ...] = ()
    kept: tuple[str, ...] = ()  # images whose sources could not all be read: their pending updates left as they were
    unknown: tuple[tuple[str, str], ...] = ()  # (image, why) patchline could not check: unknown, never clean


def refresh_feeds(store: Store, feeds: Sequence[str], *, progress: Say | None = None) -> list[RefreshResult]:
    """Refresh every configured OSV feed into the store; returns each feed's RefreshResult."""
    from patchline.advisories import OsvFeed

    say = progress or (lambda _line: None)
    out: list[RefreshResult] = []
    for name in feeds:
        say(f"refreshing advisory feed {name}")
        out.append(store.refresh_feed(OsvFeed(name)))
    return out


def refresh_updates(store: Store, options: AssessOptions, *, progress: Say | None = None) -> UpdateRefresh:
    """Recompute the pending updates of every stored image from its update sources; an image whose updates
    cannot be checked (no update route, sources unread) is recorded as unknown, with why."""
    from patchline.assess import fetch_options, from_inventory, pending_against, unchecked_sources, update_suites_for
    from patchline.updates import load_sources

    say = progress or (lambda _line: None)
    skipped: list[tuple[str, str]] = []
    unknown: list[tuple[str, str]] = []

    def cannot_check(digest: str, reason: str) -> None:
        unknown.append((digest, reason))
        store.record_unknown(digest, reason)

    groups: dict[tuple[AptSuite, ...], list[tuple[str, ScanInput]]] = {}
    for digest in store.image_digests():
        inventory = store.inventory(digest)
        if inventory is None:
            skipped.append((digest, "no stored inventory (stored without its SBOM document)"))
            cannot_check(digest, "no stored inventory (stored without its SBOM document)")
            continue
        scan = from_inventory(inventory)
        try:
            suites = update_suites_for(scan, options)
        except Error as exc:
            cannot_check(digest, str(exc))
            continue
        if not suites:
            continue  # nothing of an operating system to update
        groups.setdefault(tuple(suites), []).append((digest, scan))
    summary: list[tuple[str, str, str]] = []
    kept: list[str] = []
    total = with_pending = 0
    for group, members in groups.items():
        labels = ", ".join(s.label for s in group)
        say(f"loading update sources {labels} for {len(members)} image(s)")
        loaded = load_sources(list(group), fetch_options(options))
        skipped.extend((s.what, s.reason) for s in loaded.skipped)
        unchecked = unchecked_sources(group, loaded)
        if unchecked:
            # Planned against what could be read, the updates of a source that could not (a mirror down, an
            # expired Release, a security suite gone) would look applied: the fleet would seem patched. Keep
            # what was known and say the images are unknown. A suite that is not there at all (SuiteMissing)
            # has nothing to update from, unless it is the security suite: planned without it.
            say(f"update sources {labels} could not all be read ({unchecked[0]}); the pending updates of "
                f"{len(members)} image(s) are left as they were")
            kept.extend(digest for digest, _scan in members)
            for digest, _scan in members:
                cannot_check(digest, f"update sources could not all be read: {unchecked[0]}")
            continue
        revision = loaded.revision
        previous = store.record_update_source(labels, revision)
        summary.append((labels, revision, previous))
        for digest, scan in members:
            pending = pending_against(scan, loaded, changelogs=options.changelogs, say=say)
            store.record_pending(digest, pending, revision=revision)
            total += len(pending)
            with_pending += bool(pending)
    return UpdateRefresh(groups=tuple(summary), images=sum(len(m) for m in groups.values()), pending=total,
                         images_with_pending=with_pending, skipped=tuple(skipped), kept=tuple(kept),
                         unknown=tuple(unknown))

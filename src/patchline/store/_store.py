"""The fleet store: what is in every image, what runs where, and which advisories touch it.

Only this package talks to the database. Stages hand it plain data (an
:class:`~patchline._model.Inventory`, :class:`~patchline.fleet.Workload` rows,
an OSV feed) and get plain data back (:mod:`patchline.store.model`).

:class:`Store` is composed of one object per aggregate, all on one
:class:`~patchline.store._database.Database`; each of its methods is an
aggregate's method, delegated with the same signature and docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, Generic, ParamSpec, TypeVar, overload

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from patchline._redact import redact_passwords
from patchline.errors import Error, StoreError
from patchline.store import _engine
from patchline.store._builds import Builds
from patchline.store._database import Database
from patchline.store._findings import FindingMatcher, Findings
from patchline.store._fleet import Fleet
from patchline.store._images import Images
from patchline.store._outbox import Outbox
from patchline.store._rollouts import Rollouts
from patchline.store._runs import Runs

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")


class _Delegated(Generic[A, P, R]):
    """A :class:`Store` method that is one of its aggregate's, reached through the Store's attribute ``aggregate``."""

    def __init__(self, aggregate: str, method: Callable[Concatenate[A, P], R]) -> None:
        self.aggregate = aggregate
        self.method = method
        self.__doc__ = method.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self.method.__name__:
            raise TypeError(f"{owner.__name__}.{name} must delegate to a method of that name, not "
                            f"{self.method.__qualname__}")

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Callable[Concatenate[A, P], R]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> Callable[P, R]: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Callable[..., R]:
        if obj is None:
            return self.method
        bound: Callable[P, R] = getattr(getattr(obj, self.aggregate), self.method.__name__)
        return bound


class Store:
    """The fleet store on one database. Open it with :func:`open_store`."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        db = Database(engine, url)
        matcher = FindingMatcher()  # one parse cache for ingest and feed refresh
        self._images = Images(db, matcher)
        self._fleet = Fleet(db)
        self._findings = Findings(db, matcher)
        self._builds = Builds(db)
        self._rollouts = Rollouts(db)
        self._runs = Runs(db)
        self._outbox = Outbox(db)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- images and packages ---------------------------------------------------------
    has_image = _Delegated("_images", Images.has_image)
    record_image = _Delegated("_images", Images.record_image)
    record_refs = _Delegated("_images", Images.record_refs)
    image_for_manifest = _Delegated("_images", Images.image_for_manifest)
    inventory = _Delegated("_images", Images.inventory)
    image_digests = _Delegated("_images", Images.image_digests)

    # -- fleet and workloads ---------------------------------------------------------
    record_workloads = _Delegated("_fleet", Fleet.record_workloads)
    workloads = _Delegated("_fleet", Fleet.workloads)
    where = _Delegated("_fleet", Fleet.where)
    advisory = _Delegated("_fleet", Fleet.advisory)
    fleet = _Delegated("_fleet", Fleet.fleet)
    counts = _Delegated("_fleet", Fleet.counts)

    # -- findings and pending updates ------------------------------------------------
    refresh_feed = _Delegated("_findings", Findings.refresh_feed)
    record_pending = _Delegated("_findings", Findings.record_pending)
    record_unknown = _Delegated("_findings", Findings.record_unknown)
    record_update_source = _Delegated("_findings", Findings.record_update_source)
    unknown_for = _Delegated("_findings", Findings.unknown_for)
    pending_for = _Delegated("_findings", Findings.pending_for)
    fixable_for = _Delegated("_findings", Findings.fixable_for)

    # -- builds ------------------------------------------------------------------------
    record_build = _Delegated("_builds", Builds.record_build)
    current_builds = _Delegated("_builds", Builds.current_builds)
    builds = _Delegated("_builds", Builds.builds)
    build_of = _Delegated("_builds", Builds.build_of)

    # -- rollouts ----------------------------------------------------------------------
    start_rollout = _Delegated("_rollouts", Rollouts.start_rollout)
    update_rollout = _Delegated("_rollouts", Rollouts.update_rollout)
    update_replica = _Delegated("_rollouts", Rollouts.update_replica)
    claim_rollout = _Delegated("_rollouts", Rollouts.claim_rollout)
    rollout = _Delegated("_rollouts", Rollouts.rollout)
    rollouts = _Delegated("_rollouts", Rollouts.rollouts)
    last_rollout = _Delegated("_rollouts", Rollouts.last_rollout)
    mark_unpromotable = _Delegated("_rollouts", Rollouts.mark_unpromotable)
    unpromotable = _Delegated("_rollouts", Rollouts.unpromotable)
    unpromotables = _Delegated("_rollouts", Rollouts.unpromotables)

    # -- runs ----------------------------------------------------------------------------
    start_run = _Delegated("_runs", Runs.start_run)
    claim_step = _Delegated("_runs", Runs.claim_step)
    renew_lease = _Delegated("_runs", Runs.renew_lease)
    finish_step = _Delegated("_runs", Runs.finish_step)
    finish_run = _Delegated("_runs", Runs.finish_run)
    run = _Delegated("_runs", Runs.run)
    runs = _Delegated("_runs", Runs.runs)
    add_trigger = _Delegated("_runs", Runs.add_trigger)
    pending_triggers = _Delegated("_runs", Runs.pending_triggers)
    approve = _Delegated("_runs", Runs.approve)
    approvals = _Delegated("_runs", Runs.approvals)
    reopen_run = _Delegated("_runs", Runs.reopen_run)
    note_patch_items = _Delegated("_runs", Runs.note_patch_items)
    close_vanished_patch_items = _Delegated("_runs", Runs.close_vanished_patch_items)
    update_patch_items = _Delegated("_runs", Runs.update_patch_items)
    note_patch_why = _Delegated("_runs", Runs.note_patch_why)
    patch_items = _Delegated("_runs", Runs.patch_items)

    # -- outbox --------------------------------------------------------------------------
    emit = _Delegated("_outbox", Outbox.emit)
    events = _Delegated("_outbox", Outbox.events)
    undelivered = _Delegated("_outbox", Outbox.undelivered)
    claim_sink = _Delegated("_outbox", Outbox.claim_sink)
    release_sink = _Delegated("_outbox", Outbox.release_sink)
    rename_sink = _Delegated("_outbox", Outbox.rename_sink)
    mark_delivered = _Delegated("_outbox", Outbox.mark_delivered)
    mark_failed = _Delegated("_outbox", Outbox.mark_failed)
    sinks = _Delegated("_outbox", Outbox.sinks)
    sink = _Delegated("_outbox", Outbox.sink)


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default create or migrate) the store at ``url`` (default: :func:`default_db_url`)."""
    url = _engine.as_url(url) if url else _engine.default_db_url()
    engine = _engine.make_engine(url)
    try:
        if migrate:
            if _engine.current_revision(engine) != _engine.head_revision():
                _engine.upgrade(engine)
        else:
            current = _engine.current_revision(engine)
            if current != _engine.head_revision():
                raise StoreError(f"the store at {_display(url)} is at schema {current or 'none'}, not "
                                 f"{_engine.head_revision()}; run `patchline db upgrade`")
    except DBAPIError as exc:
        engine.dispose()
        raise _engine.translate(exc, f"opening the store at {_display(url)}",
                                secrets=_engine.url_passwords(engine)) from None
    except Error:
        engine.dispose()
        raise
    return Store(engine, url)


def _display(url: str) -> str:
    """A URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL that does not parse is shown as given, but for its password
        return redact_passwords(url)


"""The store's tables, as SQLAlchemy 2 declarative models.

Names and versions are interned (``package_names``, ``versions``): a fleet
repeats the same few thousand package names and versions millions of times, so
``image_packages`` holds only small integers. Findings are kept per
(package name, version, advisory), not per image: an image is exposed to a
finding when it holds that name at that version, which is one indexed join.
Re-assessing after an advisory changes therefore touches only the distinct
versions of the packages it names, however many images hold them.

Every change to these models comes with an Alembic migration in
``migrations/versions``; ``tests/unit/store/test_migrations.py`` checks that
the migrations produce exactly these tables.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names fixed by convention, so that migrations can name them on every database.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

DIGEST = String(80)  # "sha256:" + 64 hex, with room for sha512's algorithm name
Timestamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PackageName(Base):
    """An interned (ecosystem, name); OS source-package names share the binary names' space."""

    __tablename__ = "package_names"
    __table_args__ = (UniqueConstraint("ecosystem", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ecosystem: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(400))


class Version(Base):
    """An interned version string."""

    __tablename__ = "versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(200), unique=True)


class Image(Base):
    """One image, identified by its config digest (the same from every registry and from podman)."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    config_digest: Mapped[str] = mapped_column(DIGEST, unique=True)
    os: Mapped[str] = mapped_column(String(32), default="linux")
    architecture: Mapped[str] = mapped_column(String(32), default="amd64")
    created: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    distro: Mapped[str | None] = mapped_column(String(64))
    distro_version: Mapped[str | None] = mapped_column(String(64))
    distro_codename: Mapped[str | None] = mapped_column(String(64))
    layer_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    top_chain_id: Mapped[str | None] = mapped_column(DIGEST, index=True)
    base_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    base_layer_count: Mapped[int | None] = mapped_column(SmallInteger)
    package_count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[dt.datetime] = mapped_column(Timestamp)
    last_seen: Mapped[dt.datetime] = mapped_column(Timestamp)
    scanned_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    # Why patchline could not check the image's pending updates (no update route, sources unread); NULL: it
    # could. Set by the update refresh, cleared by the next assessment that could (migration 0007).
    assess_unknown: Mapped[str | None] = mapped_column(Text)


class ImageRef(Base):
    """A repository (and tag) that pointed at an image, and when it was seen doing so."""

    __tablename__ = "image_refs"
    __table_args__ = (UniqueConstraint("image_id", "repository", "tag"), Index(None, "repository", "tag"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    repository: Mapped[str] = mapped_column(String(400))
    tag: Mapped[str] = mapped_column(String(200), default="")  # "" when known by digest only
    manifest_digest: Mapped[str | None] = mapped_column(DIGEST)
    first_seen: Mapped[dt.datetime] = mapped_column(Timestamp)
    last_seen: Mapped[dt.datetime] = mapped_column(Timestamp)


class Layer(Base):
    __tablename__ = "layers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    diff_id: Mapped[str] = mapped_column(DIGEST, unique=True)
    size: Mapped[int | None] = mapped_column(BigInteger)


class ImageLayer(Base):
    """Layer ``idx`` of an image, with the chain ID of the image's layers up to it (base detection)."""

    __tablename__ = "image_layers"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layers.id"), index=True)
    chain_id: Mapped[str] = mapped_column(DIGEST, index=True)
    created_by: Mapped[str | None] = mapped_column(Text)


class ImagePackage(Base):
    """A package in an image. ``match_*`` is what advisories name: the source package for OS packages."""

    __tablename__ = "image_packages"
    __table_args__ = (
        Index(None, "name_id", "version_id"),
        Index(None, "match_name_id", "match_version_id"),
    )

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # the package's place in the inventory
    name_id: Mapped[int] = mapped_column(ForeignKey("package_names.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    match_name_id: Mapped[int] = mapped_column(ForeignKey("package_names.id"))
    match_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    introduced_in: Mapped[int] = mapped_column(SmallInteger)
    changed_in: Mapped[int] = mapped_column(SmallInteger)


class ImageScope(Base):
    """Which distribution scopes (``debian``, ``debian:12``, ``debian:bookworm``) apply to an image."""

    __tablename__ = "image_scopes"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)


class SbomDocument(Base):
    """The image's inventory (patchline JSON, zlib-compressed): re-assessment reads it, never the image."""

    __tablename__ = "sbom_documents"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    format: Mapped[str] = mapped_column(String(40), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[dt.datetime] = mapped_column(Timestamp)


class Workload(Base):
    """A container that ran somewhere; a workload that stopped keeps its row with ``gone_at`` set."""

    __tablename__ = "workloads"
    __table_args__ = (UniqueConstraint("runtime", "host", "container_id"), Index(None, "image_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    runtime: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    namespace: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(400))
    container_id: Mapped[str] = mapped_column(String(255))
    image_ref: Mapped[str] = mapped_column(String(600))
    image_digest: Mapped[str | None] = mapped_column(DIGEST)  # config digest, as the runtime reports it
    manifest_digest: Mapped[str | None] = mapped_column(DIGEST)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    first_seen: Mapped[dt.datetime] = mapped_column(Timestamp)
    last_seen: Mapped[dt.datetime] = mapped_column(Timestamp)
    gone_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, index=True)


class Feed(Base):
    """An advisory feed (``osv``) or an update source (``apt``), with the revision last applied."""

    __tablename__ = "feeds"
    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(1000))
    revision: Mapped[str] = mapped_column(String(200), default="")
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Advisory(Base):
    """One advisory record of a feed, kept whole so findings can be recomputed from the store."""

    __tablename__ = "advisories"
    __table_args__ = (UniqueConstraint("feed_id", "advisory_id"), Index(None, "advisory_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    advisory_id: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[str] = mapped_column(Text, default="")  # space-separated
    modified: Mapped[str] = mapped_column(String(64), default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    document: Mapped[bytes] = mapped_column(LargeBinary)  # the OSV JSON, zlib-compressed
    first_seen: Mapped[dt.datetime] = mapped_column(Timestamp)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)


class AdvisoryPackage(Base):
    """A package name an advisory names (for finding what a changed advisory touches)."""

    __tablename__ = "advisory_packages"

    advisory_pk: Mapped[int] = mapped_column(ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True)
    name_id: Mapped[int] = mapped_column(ForeignKey("package_names.id"), primary_key=True, index=True)


class Finding(Base):
    """An advisory affecting one package name at one version, within a distribution scope ("" for any)."""

    __tablename__ = "findings"
    __table_args__ = (Index(None, "match_name_id", "match_version_id"),)

    advisory_pk: Mapped[int] = mapped_column(ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True)
    match_name_id: Mapped[int] = mapped_column(ForeignKey("package_names.id"), primary_key=True)
    match_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    severity: Mapped[int] = mapped_column(SmallInteger)
    fixed_versions: Mapped[str] = mapped_column(Text, default="")  # space-separated; "" when no fix
    feed_revision: Mapped[str] = mapped_column(String(200))
    computed_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class PendingUpdate(Base):
    """An update the image's update sources offer for one of its packages."""

    __tablename__ = "pending_updates"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    name_id: Mapped[int] = mapped_column(ForeignKey("package_names.id"), primary_key=True, index=True)
    installed_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    candidate_version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    suite: Mapped[str] = mapped_column(String(200))
    source_name: Mapped[str] = mapped_column(String(400))
    cves: Mapped[str] = mapped_column(Text, default="")  # space-separated
    source_revision: Mapped[str] = mapped_column(String(200))  # the update sources' revision it came from
    computed_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class Build(Base):
    """One build (or patch in place) of a recipe by ``patchline rebuild``, whatever its outcome.

    The latest ``built`` or ``unchanged`` build of a recipe is its current state: the inputs
    (``input_hash``, ``bases``) the next plan compares against, and the image it produced.
    """

    __tablename__ = "builds"
    __table_args__ = (Index(None, "recipe", "finished_at"), Index(None, "run_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    recipe: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "recipe" or "patch"
    status: Mapped[str] = mapped_column(String(24))  # built, unchanged, failed, blocked, skipped, verify-failed
    reasons: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {code, detail}
    target: Mapped[str] = mapped_column(String(600))
    input_hash: Mapped[str] = mapped_column(String(80), default="")
    bases: Mapped[str] = mapped_column(Text, default="{}")  # JSON {reference: pinned digest}
    config_digest: Mapped[str | None] = mapped_column(DIGEST)
    manifest_digest: Mapped[str | None] = mapped_column(DIGEST)
    previous_config_digest: Mapped[str | None] = mapped_column(DIGEST)
    verification: Mapped[str] = mapped_column(Text, default="{}")  # JSON: fixed, remaining, new
    error: Mapped[str] = mapped_column(Text, default="")
    log_path: Mapped[str] = mapped_column(String(1000), default="")
    source_date_epoch: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    finished_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class Event(Base):
    """The transactional outbox: an event is written in the transaction of the state change it reports.

    ``seq`` orders delivery; writers serialize on an advisory lock (PostgreSQL) or the database
    write lock (SQLite), so a smaller ``seq`` always commits first and a sink's cursor never skips one.
    """

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(100))  # e.g. image.rebuilt
    subject: Mapped[str] = mapped_column(String(800), default="")
    data: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class EventSink(Base):
    """One publisher's place in the outbox: every event up to ``delivered_seq`` has been delivered."""

    __tablename__ = "event_sinks"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # amqp, webhook:https://host/…#hash
    delivered_seq: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failures since the last delivery
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    owner: Mapped[str] = mapped_column(String(200), default="", server_default="")  # host:pid delivering now
    lease_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class Unpromotable(Base):
    """A digest that failed verification or a rollout: it is never rolled out again."""

    __tablename__ = "unpromotable"

    digest: Mapped[str] = mapped_column(DIGEST, primary_key=True)  # manifest or config digest
    repository: Mapped[str] = mapped_column(String(600))
    stage: Mapped[str] = mapped_column(String(24))  # verify, rollout
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class Rollout(Base):
    """One rollout of a service from one image to another; durable so a killed patchline resumes it."""

    __tablename__ = "rollouts"
    __table_args__ = (Index(None, "service", "id"), Index(None, "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(200))
    strategy: Mapped[str] = mapped_column(String(24))
    from_image: Mapped[str | None] = mapped_column(String(800))  # repository@digest; none for a first deploy
    to_image: Mapped[str] = mapped_column(String(800))
    state: Mapped[str] = mapped_column(String(24))  # running, rolling-back, succeeded, rolled-back, failed
    phase: Mapped[str] = mapped_column(String(80), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[str] = mapped_column(Text)  # JSON: the service as configured when the rollout started
    owner: Mapped[str] = mapped_column(String(200), default="")  # host:pid driving it
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    timings: Mapped[str] = mapped_column(Text, default="{}")  # JSON: seconds per stage (pull, start, health, bake)


class RolloutReplica(Base):
    """One replica's place in a rollout."""

    __tablename__ = "rollout_replicas"

    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"), primary_key=True)
    replica: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_image: Mapped[str | None] = mapped_column(String(800))
    state: Mapped[str] = mapped_column(String(24))  # pending, replacing, ready, failed, reverting, reverted
    container: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class PatchRun(Base):
    """One pass of the pipeline (detect, assess, plan, build, rollout, report), durable and resumable."""

    __tablename__ = "patch_runs"
    __table_args__ = (Index(None, "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(40))  # once, interval, manual, demo
    triggered_by: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(24))  # running, succeeded, failed, awaiting-approval
    step: Mapped[str] = mapped_column(String(24), default="")
    inputs: Mapped[str] = mapped_column(Text, default="{}")  # JSON: feed and update-source revisions, digests
    summary: Mapped[str] = mapped_column(Text, default="{}")  # JSON: what each step did
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)


class RunStep(Base):
    """One step of a run; a lease makes sure two patchline processes never run the same step."""

    __tablename__ = "run_steps"

    run_id: Mapped[int] = mapped_column(ForeignKey("patch_runs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(24))  # pending, running, done, failed
    owner: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    output: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class PatchTrigger(Base):
    """A request for a run (`patchline trigger`), taken by the next run."""

    __tablename__ = "patch_triggers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requested_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    run_id: Mapped[int | None] = mapped_column(Integer)  # the run that took it


class Approval(Base):
    """A person's go for a service's rollout in a run (services with auto_rollout = false wait for one)."""

    __tablename__ = "approvals"

    run_id: Mapped[int] = mapped_column(ForeignKey("patch_runs.id", ondelete="CASCADE"), primary_key=True)
    service: Mapped[str] = mapped_column(String(200), primary_key=True)
    approved_by: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[dt.datetime] = mapped_column(Timestamp)


class PatchItem(Base):
    """Time-to-patch: one advisory or pending update in one image, from first seen to running fixed everywhere."""

    __tablename__ = "patch_items"
    __table_args__ = (Index(None, "kind", "item"), Index(None, "recipe", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # advisory, update
    item: Mapped[str] = mapped_column(String(300))  # an advisory ID, or the package name of a pending update
    recipe: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(24))  # open, rebuilt, deployed, stuck, closed (no longer reported)
    why: Mapped[str] = mapped_column(Text, default="")  # what keeps it open: build failed, rolled back, approval
    first_seen_at: Mapped[dt.datetime] = mapped_column(Timestamp)
    first_seen_run: Mapped[int | None] = mapped_column(Integer)
    rebuilt_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    digest: Mapped[str | None] = mapped_column(DIGEST)  # the manifest digest that fixed it
    deployed_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)  # the last workload on the fixed digest
    services: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the services that run the recipe

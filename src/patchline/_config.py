"""``patchline.toml``: the one configuration file, read into pydantic models.

Looked up in this order: ``--config PATH``, ``$PATCHLINE_CONFIG``,
``./patchline.toml``, ``$XDG_CONFIG_HOME/patchline/patchline.toml``. Every key
has a default, so no file at all is a valid configuration. Unknown keys are
errors: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from patchline._redact import redact, redact_passwords, secret_strings
from patchline.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheConfig(_Section):
    dir: Path | None = Field(default=None, description="Catalog cache directory; default ~/.cache/patchline")
    enabled: bool = True


class RegistryConfig(_Section):
    insecure: tuple[str, ...] = Field(
        default=(), description="Registry hosts (host:port) that may be reached over plain HTTP"
    )


class ScanConfig(_Section):
    platform: str | None = Field(default=None, description="os/arch[/variant]; default: this host's")
    catalogers: tuple[str, ...] | None = Field(default=None, description="Cataloger names; default: all")
    strict: bool = Field(default=False, description="Treat any skipped file as an error (exit 1)")

    @field_validator("catalogers")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("an empty cataloger list would find nothing; omit the key for all catalogers")
        return value


class UpdateSourceConfig(_Section):
    """One apt suite to take updates from, e.g. the security suite of a mirror."""

    url: str
    suite: str
    components: tuple[str, ...] = ("main",)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("an update source URL must be http:// or https://")
        return value


class UpdatesConfig(_Section):
    enabled: bool = True
    sources: tuple[UpdateSourceConfig, ...] = Field(
        default=(),
        description="Explicit suites; default: the image's own apt sources mapped to their -security "
        "and -updates suites on the host's mirrors",
    )
    keyring: Path | None = Field(default=None, description="OpenPGP keyring for InRelease; default: Debian's")
    unsafe_skip_signature: bool = Field(default=False, description="Read unsigned or badly signed indexes")


class FeedUrlConfig(_Section):
    """An ``[advisories] feeds`` entry written as a table: a feed URL with its options."""

    url: str
    allow_http: bool = Field(default=False, description="Accept this plain http:// URL (anyone on the way could "
                             "change its advisories: pin it with sha256)")
    sha256: str | None = Field(default=None, description="The SHA-256 of the feed file: any other content is refused")

    @model_validator(mode="after")
    def _valid(self) -> FeedUrlConfig:
        if not self.url.startswith(("http://", "https://")) or "#" in self.url:
            raise ValueError("a feed table's url is an http(s) URL without a #fragment; a directory or zip is a "
                             "plain string")
        if self.allow_http and not self.url.startswith("http://"):
            raise ValueError("allow_http = true is only for an http:// URL")
        return self


class AdvisoriesConfig(_Section):
    feeds: tuple[str, ...] = Field(
        default=(), description='OSV feeds: directories, zips or https URLs; a table {url = "...", '
        'allow_http = true, sha256 = "..."} for a URL with options')
    vex: tuple[Path, ...] = Field(default=(), description="OpenVEX documents")
    mirror: str | None = Field(
        default=None, description="Base URL of OSV's per-ecosystem archives (BASE/ECOSYSTEM/all.zip) that "
        "`patchline feeds update` and `patchline run` fetch: OSV's public bucket or an internal mirror of it; "
        "unset: nothing is fetched. https only, unless it ends in #allow_http")
    ecosystems: tuple[str, ...] = Field(
        default=(), description='OSV ecosystems fetched from the mirror, as OSV names them: "PyPI", "Debian", '
        '"npm", "Go", "Maven"...')
    feeds_dir: Path | None = Field(
        default=None, description="Where fetched feeds are kept (ECOSYSTEM/all.zip, and feeds.json with each "
        "one's revision); they are read by every assessment; default ~/.local/share/patchline/osv")

    @field_validator("mirror")
    @classmethod
    def _mirror_url(cls, value: str | None) -> str | None:
        # The scheme is checked here, where the file is read; the rest when `feeds update` uses it (the config
        # sits below the advisory feeds and does not import them).
        if value is None:
            return None
        scheme = value.partition("://")[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError("the advisory mirror is not an http(s) URL")
        if scheme == "http" and not value.endswith("#allow_http"):
            raise ValueError("the advisory mirror is plain http://: anyone on the way could change its advisories; "
                             "use https://, or end the URL with #allow_http to accept that")
        return value

    @field_validator("feeds", mode="before")
    @classmethod
    def _feed_tables(cls, value: object) -> object:
        """A table becomes the one string every command takes (``URL#allow_http&sha256=HEX``); every URL is
        checked now (plain http, the pin) rather than at the first download."""
        if not isinstance(value, list | tuple):
            return value
        from patchline._feedurl import check_feed_url, feed_source
        from patchline.errors import FeedError

        out: list[object] = []
        for entry in value:
            if isinstance(entry, dict):
                table = FeedUrlConfig.model_validate(entry)
                entry = feed_source(table.url, allow_http=table.allow_http, sha256=table.sha256)
            if isinstance(entry, str) and entry.startswith(("http://", "https://")):
                try:
                    check_feed_url(entry)
                except FeedError as exc:
                    raise ValueError(str(exc)) from exc
            out.append(entry)
        return tuple(out)


class StoreConfig(_Section):
    url: str | None = Field(
        default=None,
        description="Database URL (sqlite:///PATH, postgresql+psycopg://USER@HOST/DB) or a SQLite file path; "
        "$PATCHLINE_DB overrides it; default ~/.local/share/patchline/patchline.db",
    )


class FleetConfig(_Section):
    stale_days: int = Field(default=30, ge=1, description="Images older than this are reported as stale")
    registries: tuple[str, ...] = Field(
        default=(), description="REGISTRY or REGISTRY/REPO targets `patchline discover registry` lists by default"
    )


class BuildConfig(_Section):
    """How ``patchline rebuild`` builds, pushes and verifies images."""

    registry: str = Field(default="127.0.0.1:5000", description="Where images with no explicit target are pushed; "
                          "also passed to every build as the build arg PATCHLINE_REGISTRY")
    namespace: str = Field(default="patchline", description="Repository prefix for images with no explicit target")
    jobs: int = Field(default=0, ge=0, description="Builds at once; 0: the number of cores")
    pull: Literal["always", "missing", "never", "newer"] = Field(
        default="missing", description="buildah's --pull policy for base images (they are pinned by digest anyway)")
    network: str = Field(default="private", description="buildah --network for RUN steps: private (buildah's own "
                         "network namespace; it reaches the mirrors, not the host's loopback), host, none")
    source_date_epoch: int | None = Field(
        default=None, ge=0, description="Fixed timestamp for every build; default: the previous build's when the "
        "recipe and its bases are unchanged, else the build's start")
    update_sources: bool = Field(
        default=True, description="Mount the image's update suites (the ones the assessment uses) into RUN steps, "
        "so that apt-get upgrade in a recipe installs the pending security updates")
    ca_bundle: Path | None = Field(default=None, description="A CA bundle mounted into RUN steps (TLS-intercepting "
                                   "networks)")
    pending: Literal["security", "all", "none"] = Field(
        default="security", description="Which pending updates make an image dirty: from *-security suites or "
        "naming CVEs, any, or none")
    max_age_days: int | None = Field(default=None, ge=1, description="Rebuild images older than this")
    logs: Path | None = Field(default=None, description="Build logs; default ~/.local/share/patchline/builds")
    args: dict[str, str] = Field(default_factory=dict, description="Build args for every recipe")


class ImageTest(_Section):
    """One integration test of a new image: a command in a container of it, or an HTTP check against one."""

    name: str | None = Field(default=None, description="Shown in reports; default: the command or the URL path")
    command: str | None = Field(default=None, description="Run with /bin/sh -c in a new container; exit 0 passes")
    http: str | None = Field(default=None, description="Path to GET from a container of the image, e.g. /healthz")
    port: int | None = Field(default=None, ge=1, le=65535, description="The container port the HTTP check uses")
    status: int = Field(default=200, ge=100, le=599, description="The HTTP status that passes")
    body: str | None = Field(default=None, description="A regular expression the HTTP body must match")
    env: dict[str, str] = Field(default_factory=dict, description="Environment of the test's container")
    timeout: float = Field(default=60.0, gt=0, description="Seconds before the test fails")
    capabilities: tuple[str, ...] = Field(default=(), description="Linux capabilities the test's container keeps "
                                          "(all others are dropped), e.g. NET_BIND_SERVICE")
    memory: str | None = Field(default=None, pattern=r"^[0-9]+[bkmg]?$", description="Memory limit, e.g. 512m")
    pids_limit: int = Field(default=1024, ge=16, description="Processes the test's container may have")

    @model_validator(mode="after")
    def _one_kind(self) -> ImageTest:
        if (self.command is None) == (self.http is None):
            raise ValueError("a test needs exactly one of command or http")
        if self.http is not None and (self.port is None or not self.http.startswith("/")):
            raise ValueError("an http test needs a path starting with / and the container port")
        return self

    @property
    def label(self) -> str:
        return self.name or self.command or f"GET :{self.port}{self.http}"


class ImageRecipe(_Section):
    """One image of the fleet: a recipe (context + Containerfile), or an image patched in place."""

    name: str | None = Field(default=None, description="Unique name; for a glob, the directory's name")
    context: Path | None = Field(default=None, description="Build context directory (relative to this file)")
    containerfile: str = Field(default="Containerfile", description="Relative to the context")
    glob: str | None = Field(default=None, description="Directories holding a Containerfile, one recipe each")
    image: str | None = Field(default=None, description="An image with no recipe, patched in place")
    target: str | None = Field(default=None, description="Reference to push to; default REGISTRY/NAMESPACE/NAME:latest")
    args: dict[str, str] = Field(default_factory=dict)
    build_target: str | None = Field(default=None, description="Stage to build (buildah --target)")
    network: str | None = Field(default=None, description="buildah --network for this image's RUN steps, e.g. "
                                "\"host\" when they must reach a service on the host's loopback; default "
                                "[build] network")
    tests: tuple[ImageTest, ...] = Field(
        default=(), description="Integration tests of the new image; a string is a command")

    @field_validator("tests", mode="before")
    @classmethod
    def _command_strings(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            return tuple({"command": v} if isinstance(v, str) else v for v in value)
        return value
    max_age_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> ImageRecipe:
        kinds = [k for k in ("context", "glob", "image") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("an [[images]] entry needs exactly one of context, glob or image")
        if self.glob is None and not self.name:
            raise ValueError("an [[images]] entry needs a name (only a glob names its recipes itself)")
        if self.glob is not None and (self.name or self.target):
            raise ValueError("a glob entry names its recipes after their directories: no name or target")
        return self


class SignConfig(_Section):
    """How pushed images are signed, and what the podman target requires."""

    enabled: bool = Field(default=True, description="Sign every pushed image (GPG simple signing)")
    keyring: Path | None = Field(default=None, description="patchline's own key directory (GnuPG home and the "
                                 "cosign key); never the user's keyring; default ~/.local/share/patchline/keys")
    lookaside: Path | None = Field(default=None, description="Where simple signatures are written (a file:// "
                                   "lookaside store); default ~/.local/share/patchline/sigstore")
    registries_d: Path | None = Field(default=None, description="patchline's own registries.d directory (its "
                                      "lookaside configuration, read only by its pulls); default: registries.d "
                                      "beside the policy.json")
    policy: Path | None = Field(default=None, description="The policy.json the podman target pulls through; "
                                "default ~/.local/share/patchline/policy.json")
    cosign: bool = Field(default=True, description="Also push a cosign-format signature (tag sha256-HEX.sig)")
    sbom: bool = Field(default=True, description="Attach the CycloneDX SBOM as an OCI artifact")
    provenance: bool = Field(default=True, description="Attach SLSA v1 provenance, a DSSE envelope signed with "
                             "the cosign key (tag sha256-HEX.att, as cosign attest writes it)")


class WebhookConfig(_Section):
    url: str = Field(description="POSTed CloudEvents 1.0 JSON")
    secret: str | None = Field(default=None, description="HMAC-SHA256 key for the signature header")
    secret_env: str | None = Field(default=None, description="Environment variable holding the HMAC key")
    types: tuple[str, ...] = Field(default=(), description="Event types to send (prefixes); default all")
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a webhook URL must be http:// or https://")
        return value


class EventsConfig(_Section):
    """Where events from the outbox are delivered (at least once, in order, per sink)."""

    amqp_url: str | None = Field(default=None, description="amqp://USER:PASS@HOST:PORT/VHOST; none: no AMQP")
    exchange: str = Field(default="patchline", description="A durable topic exchange; routing key patchline.TYPE")
    source: str | None = Field(default=None, description="CloudEvents source; default /patchline/HOSTNAME")
    webhooks: tuple[WebhookConfig, ...] = ()
    max_backoff_seconds: float = Field(default=300.0, gt=0, description="Longest wait between retries")


class HealthCheckConfig(_Section):
    """How a replica proves it serves: an HTTP GET on its published port, or a command run in it."""

    http: str | None = Field(default=None, description="Path to GET, e.g. /healthz")
    command: str | None = Field(default=None, description="Run with podman exec (/bin/sh -c); exit 0 is healthy")
    status: int = Field(default=200, ge=100, le=599)
    interval: float = Field(default=0.5, gt=0, description="Seconds between probes")
    timeout: float = Field(default=2.0, gt=0, description="Seconds one probe may take")
    start_timeout: float = Field(default=60.0, gt=0, description="A new replica must be healthy within this")
    failures: int = Field(default=3, ge=1, description="Consecutive failed probes that make a running replica "
                          "unhealthy during the bake")

    @model_validator(mode="after")
    def _one_kind(self) -> HealthCheckConfig:
        if self.http is not None and self.command is not None:
            raise ValueError("a health check is http or command, not both")
        if self.http is not None and not self.http.startswith("/"):
            raise ValueError("an http health check is a path starting with /")
        return self


class ServiceConfig(_Section):
    """A service patchline runs and rolls out: replicas of one image."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    image: str = Field(description="A recipe name of [[images]], or a repository")
    replicas: int = Field(default=1, ge=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="The container port")
    host_port: int | None = Field(default=None, ge=1, le=65535, description="Replica 0's port on 127.0.0.1; "
                                  "replica N gets host_port + N")
    env: dict[str, str] = Field(default_factory=dict)
    command: tuple[str, ...] = Field(default=(), description="Arguments replacing the image's command")
    podman_args: tuple[str, ...] = Field(default=(), description="Extra podman run flags (hardening, limits)")
    capabilities: tuple[str, ...] = Field(default=(), description="Linux capabilities the replicas keep "
                                          "(all others are dropped), e.g. NET_BIND_SERVICE")
    memory: str | None = Field(default=None, pattern=r"^[0-9]+[bkmg]?$", description="Memory limit, e.g. 512m")
    pids_limit: int = Field(default=1024, ge=16, description="Processes a replica may have")
    userns_auto: bool = Field(default=False, description="A user namespace of its own (needs /etc/subuid)")
    runtime: Literal["default", "runsc"] = Field(
        default="default", description="runsc: replicas run under gVisor's user-space kernel (not fully trusted "
        "workloads; syscalls cost about 100x more); default: podman's runtime")
    health: HealthCheckConfig = HealthCheckConfig()
    strategy: Literal["rolling", "canary", "all-at-once"] = "rolling"
    max_unavailable: int = Field(default=1, ge=1, description="Replicas that may be down at once while rolling")
    bake_seconds: float = Field(default=30.0, ge=0, description="How long the canary is watched")
    auto_rollout: bool = Field(default=True, description="Roll out new verified builds without approval")

    @model_validator(mode="after")
    def _ports(self) -> ServiceConfig:
        if (self.port is None) != (self.host_port is None):
            raise ValueError("port and host_port go together")
        if self.health.http is not None and self.port is None:
            raise ValueError("an http health check needs port and host_port")
        if self.host_port is not None and self.host_port + self.replicas - 1 > 65535:
            raise ValueError("host_port + replicas runs past 65535")
        return self


class RolloutConfig(_Section):
    target: Literal["podman"] = Field(default="podman", description="Where services run")
    require_signature: bool = Field(default=True, description="Pull only images signed by patchline's key")


class PipelineConfig(_Section):
    """What `patchline run` does without a person: every knob has a safe default."""

    interval_minutes: float = Field(default=60.0, gt=0, description="Between runs of `patchline run` (it also "
                                    "runs at once on `patchline trigger`)")
    rebuild_reasons: tuple[str, ...] = Field(
        default=("never-built", "recipe-changed", "base-updated", "base-rebuilt", "pending-updates",
                 "fixable-advisory", "max-age", "forced"),
        description="Plan reasons that rebuild automatically; an image dirty for other reasons waits")
    min_severity: Literal["none", "low", "medium", "high", "critical"] = Field(
        default="none", description="A fixable advisory below this severity does not rebuild automatically")
    max_parallel_rollouts: int = Field(default=1, ge=1, description="Services rolling out at once (a fleet wave)")
    quiet_hours: tuple[str, ...] = Field(default=(), description="UTC windows like \"22:00-06:00\" with no "
                                         "rollouts; none by default: there is no patch window")
    lease_seconds: float = Field(default=300.0, gt=0, description="A step's lease; renewed while it runs")

    @field_validator("quiet_hours")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            start, sep, end = window.partition("-")
            try:
                time.fromisoformat(start)
                time.fromisoformat(end)
            except ValueError:
                sep = ""
            if not sep:
                raise ValueError(f"a quiet-hours window is HH:MM-HH:MM, not {window!r}")
        return value


class IgnoreRule(_Section):
    """Move a finding to the ignored list, with a reason, until it expires."""

    id: str
    package: str | None = None
    reason: str
    expires: date | None = None


class PolicyException(_Section):
    """A rule set aside for some subjects, by someone, for a reason, until a day (then it expires by itself)."""

    rule: Literal["allowed-bases", "base-age", "base-signed", "max-fixable-severity", "denied-packages",
                  "pending-update-age", "required-runtime", "required-attestations", "denied-licenses"]
    subject: str = Field(description="A glob over the base reference, image repository or recipe it excuses")
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: date


class PolicyConfig(_Section):
    """What may be built and run; each rule is off while empty."""

    allowed_bases: tuple[str, ...] = Field(default=(), description="Globs over the repositories (registry/name) "
                                           "images may be built FROM: plan refuses a recipe using another")
    max_fixable_severity: Literal["none", "low", "medium", "high", "critical"] | None = Field(
        default=None, description="The worst fixable advisory severity an image may carry into a rollout")
    denied_packages: tuple[str, ...] = Field(default=(), description="Globs over package names no rolled-out "
                                             "image may contain")
    denied_licenses: tuple[str, ...] = Field(default=(), description="Globs over SPDX licence ids (as the "
                                             "inventory reports them) no pushed or rolled-out image may contain, "
                                             "e.g. AGPL-*")
    max_base_age_days: int | None = Field(
        default=None, ge=0, description="Plan refuses a recipe whose outside base was created (its image config's "
        "`created`) more than this many days ago; a base whose creation date is unknown is refused too")
    allowed_bases_signed_by: tuple[Path, ...] = Field(
        default=(), description="cosign public keys (PEM; relative to this file): plan refuses a recipe whose "
        "outside base carries no cosign signature that verifies with one of them")
    require_runsc_for_bases: tuple[str, ...] = Field(
        default=(), description="Globs over base repositories: an image built FROM one (or whose bases are "
        "unknown) is rolled out only to services with runtime = \"runsc\" (gVisor)")
    max_pending_update_age_days: int | None = Field(
        default=None, ge=0, description="A rollout refuses an image with a security update pending for longer "
        "than this many days since patchline first saw it (an update with no such record is refused too)")
    require_attestations: tuple[Literal["signature", "cosign", "sbom", "provenance"], ...] = Field(
        default=(), description="What a rollout verifies before it pulls (as `patchline verify` does): the simple "
        "signature, the cosign signature, the SBOM the provenance names, the SLSA provenance and its bases")
    exceptions: tuple[PolicyException, ...] = ()


class Config(_Section):
    cache: CacheConfig = CacheConfig()
    registries: RegistryConfig = RegistryConfig()
    scan: ScanConfig = ScanConfig()
    updates: UpdatesConfig = UpdatesConfig()
    advisories: AdvisoriesConfig = AdvisoriesConfig()
    store: StoreConfig = StoreConfig()
    fleet: FleetConfig = FleetConfig()
    build: BuildConfig = BuildConfig()
    images: tuple[ImageRecipe, ...] = ()
    sign: SignConfig = SignConfig()
    events: EventsConfig = EventsConfig()
    rollout: RolloutConfig = RolloutConfig()
    services: tuple[ServiceConfig, ...] = ()
    pipeline: PipelineConfig = PipelineConfig()
    policy: PolicyConfig = PolicyConfig()
    ignore: tuple[IgnoreRule, ...] = ()
    source: Path | None = Field(default=None, exclude=True, description="The file this was read from")

    @model_validator(mode="after")
    def _unique_services(self) -> Config:
        names = [s.name for s in self.services]
        if len(names) != len(set(names)):
            raise ValueError("service names must be unique")
        return self


def _candidates(explicit: Path | None) -> list[Path]:
    if explicit is not None:
        return [explicit]
    paths = []
    if env := os.environ.get("PATCHLINE_CONFIG"):
        return [Path(env)]
    paths.append(Path.cwd() / "patchline.toml")
    xdg = os.environ.get("XDG_CONFIG_HOME")
    paths.append((Path(xdg) if xdg else Path.home() / ".config") / "patchline" / "patchline.toml")
    return paths


def load_config(path: Path | None = None) -> Config:
    """Read the configuration; an explicit path that does not exist is an error."""
    candidates = _candidates(path)
    explicit = path is not None or "PATCHLINE_CONFIG" in os.environ
    for candidate in candidates:
        if not candidate.is_file():
            if explicit:
                raise ConfigError(f"configuration file {candidate} does not exist")
            continue
        try:
            with candidate.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{candidate}: {exc}") from exc
        try:
            return Config.model_validate({**data, "source": candidate})
        except ValidationError as exc:
            # Not chained: the ValidationError's text shows every input value, passwords and webhook paths too.
            raise _invalid_config(candidate, exc) from None
    return Config()


# Keys whose values are, or may hold, secrets: DSN and AMQP passwords, webhook paths, HMAC keys, environments.
_SECRET_KEYS = frozenset({"url", "amqp_url", "secret", "password", "token", "env", "args", "feeds"})


def _invalid_config(source: Path, exc: ValidationError) -> ConfigError:
    """The first error as ``SOURCE: LOCATION: MESSAGE`` (all of them in the detail), never an input value."""
    lines = []
    for error in exc.errors(include_url=False, include_context=False, include_input=True):
        loc = [str(p) for p in error["loc"]]
        # A validator's message may quote its input (a feed's URL): a secret one is blanked out of it.
        secret = _secret_values(error.get("input"), under_secret=bool(_SECRET_KEYS.intersection(loc)))
        message = redact_passwords(redact(error["msg"], secret, urls=True))
        lines.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return ConfigError(f"{source}: {lines[0]}", detail="\n".join(lines) if len(lines) > 1 else None)


def _secret_values(value: object, *, under_secret: bool) -> list[str]:
    if under_secret:
        return secret_strings(value)
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _secret_values(v, under_secret=k in _SECRET_KEYS)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _secret_values(v, under_secret=False)]
    return []

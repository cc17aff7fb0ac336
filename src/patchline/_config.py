"""``patchline.toml``: the one configuration file, read into pydantic models.

Looked up in this order: ``--config PATH``, ``$PATCHLINE_CONFIG``,
``./patchline.toml``, ``$XDG_CONFIG_HOME/patchline/patchline.toml``. Every key
has a default, so no file at all is a valid configuration. Unknown keys are
errors: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class AdvisoriesConfig(_Section):
    feeds: tuple[str, ...] = Field(default=(), description="OSV feeds: directories, zips or http(s) URLs")
    vex: tuple[Path, ...] = Field(default=(), description="OpenVEX documents")


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


class IgnoreRule(_Section):
    """Move a finding to the ignored list, with a reason, until it expires."""

    id: str
    package: str | None = None
    reason: str
    expires: date | None = None


class Config(_Section):
    cache: CacheConfig = CacheConfig()
    registries: RegistryConfig = RegistryConfig()
    scan: ScanConfig = ScanConfig()
    updates: UpdatesConfig = UpdatesConfig()
    advisories: AdvisoriesConfig = AdvisoriesConfig()
    store: StoreConfig = StoreConfig()
    fleet: FleetConfig = FleetConfig()
    ignore: tuple[IgnoreRule, ...] = ()
    source: Path | None = Field(default=None, exclude=True, description="The file this was read from")


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
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{candidate}: {where}: {first['msg']}", detail=str(exc)) from exc
    return Config()

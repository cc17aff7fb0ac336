"""The example fleet copied into the work directory, and its ``patchline.toml`` rewritten for the demo: its
registry, ports, service names, store, keys and logs."""

from __future__ import annotations

import copy
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from patchline._config import Config, load_config
from patchline.demo._fleet_today import service_containers
from patchline.demo._options import DEMO_IMAGE, DemoOptions
from patchline.demo._workdir import WorkPaths
from patchline.errors import ConfigError


def example_fleet() -> Path:
    """``examples/fleet`` of the repository patchline is installed from (an editable install)."""
    import patchline

    return Path(patchline.__file__).resolve().parents[2] / "examples" / "fleet"


def copy_fleet(source: Path, dest: Path) -> None:
    """The recipes of ``source`` (each a directory), copied fresh so the demo follows the examples."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            shutil.rmtree(dest / entry.name, ignore_errors=True)
            shutil.copytree(entry, dest / entry.name)


def demo_config_document(example: Mapping[str, Any], options: DemoOptions, *, workdir: Path) -> dict[str, Any]:
    """The example's ``patchline.toml`` rewritten for the demo: its registry, ports, names, and files (under the
    absolute ``workdir``)."""
    doc: dict[str, Any] = copy.deepcopy(dict(example))
    host = f"127.0.0.1:{options.registry_port}"
    work = workdir
    doc["registries"] = {**doc.get("registries", {}), "insecure": [host]}
    build = doc.setdefault("build", {})
    build["registry"] = host
    build["logs"] = str(work / "builds")
    if options.base_image != DEMO_IMAGE:
        build["args"] = {**build.get("args", {}), "DEBIAN_BASE": options.base_image}
    doc["store"] = {"url": f"sqlite:///{work / 'patchline.db'}"}
    doc["sign"] = {**doc.get("sign", {}), "keyring": str(work / "keys"), "lookaside": str(work / "sigstore"),
                   "policy": str(work / "policy.json")}
    # No broker or webhook for the demo: events stay in the store's outbox (`patchline events list`).
    doc.pop("events", None)
    services = doc.get("services", [])
    ports = [s["host_port"] for s in services if "host_port" in s]
    lowest = min(ports, default=0)
    for service in services:
        service["name"] = options.name_prefix + service["name"]
        if "host_port" in service:
            service["host_port"] = options.port_base + service["host_port"] - lowest
        if service.get("strategy") == "canary":
            service["bake_seconds"] = min(float(service.get("bake_seconds", 30.0)), options.bake_seconds)
    return doc


def check_unchanged(options: DemoOptions, paths: WorkPaths) -> None:
    """A demo set up with another registry, prefix or ports is refused: its store, images and containers name
    the old ones."""
    if not paths.config.is_file():
        return
    try:
        old = load_config(paths.config)
    except ConfigError:
        return  # not ours to judge any more: rewritten below
    host = f"127.0.0.1:{options.registry_port}"
    if old.build.registry != host:
        raise ConfigError(f"the demo in {paths.workdir} uses the registry {old.build.registry}: give --registry-port "
                          f"{old.build.registry.rpartition(':')[2]}, or start over with `patchline demo down --purge`")
    wanted = demo_config_document(example_document(options), options, workdir=paths.workdir).get("services", [])
    now = {(s["name"], s.get("host_port")) for s in wanted}
    moved = [s.name for s in old.services if (s.name, s.host_port) not in now and service_containers(s.name)]
    if moved:
        raise ConfigError(f"the demo's services {', '.join(moved)} run with another --name-prefix or --port-base: "
                          "give the same ones, or stop them first with `patchline demo down`")


def example_document(options: DemoOptions) -> dict[str, Any]:
    source = fleet_source(options)
    try:
        return tomllib.loads((source / "patchline.toml").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"the example fleet is not at {source}: run the demo from a clone of the repository "
                          "(pip install -e .), or name a fleet directory with --fleet") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{source / 'patchline.toml'}: {exc}") from exc


def fleet_source(options: DemoOptions) -> Path:
    return (options.fleet or example_fleet()).expanduser().absolute()


def write_config(options: DemoOptions, paths: WorkPaths) -> Config:
    source = fleet_source(options)
    example = example_document(options)
    copy_fleet(source, paths.fleet)
    doc = demo_config_document(example, options, workdir=paths.workdir)
    header = (f"# Written by `patchline demo` from {source / 'patchline.toml'}: the same fleet, with the demo's\n"
              f"# registry, ports, service names, store, keys and logs under {paths.workdir}.\n"
              "# It is rewritten on every `patchline demo`; use it with `patchline --config THIS_FILE ...`.\n")
    paths.config.write_text(header + to_toml(doc), encoding="utf-8")
    return load_config(paths.config)


def to_toml(doc: Mapping[str, Any]) -> str:
    """``doc`` as a TOML document (tomllib only reads)."""
    try:
        return tomli_w.dumps(doc)
    except TypeError as exc:
        raise ConfigError(f"cannot write the demo's configuration as TOML: {exc}") from exc

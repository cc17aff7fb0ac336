"""`patchline demo`'s pure parts: the example's configuration rewritten for the demo, the TOML it writes, the
work directory it refuses, and the command line's shape (``demo`` runs, ``demo down`` is a subcommand)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline._config import load_config
from patchline.cli import app
from patchline.demo import DemoOptions, demo_config_document, demo_down, example_fleet, to_toml
from patchline.demo._options import check_options
from patchline.demo._workdir import claim_workdir
from patchline.errors import ConfigError

EXAMPLE = example_fleet() / "patchline.toml"


def _document(tmp_path: Path, **options: object) -> dict[str, object]:
    example = tomllib.loads(EXAMPLE.read_text())
    return demo_config_document(example, DemoOptions(workdir=tmp_path, **options), workdir=tmp_path)  # type: ignore[arg-type]


def test_the_example_fleet_is_found_from_the_package() -> None:
    assert EXAMPLE.is_file()
    assert {p.name for p in example_fleet().iterdir() if p.is_dir()} == {"base", "web", "web-admin", "tools",
                                                                        "worker"}


def test_the_demo_config_round_trips_through_its_toml(tmp_path: Path) -> None:
    doc = _document(tmp_path, registry_port=5123, port_base=30000, name_prefix="t1-")
    assert tomllib.loads(to_toml(doc)) == doc


def test_the_demo_config_moves_registry_ports_names_and_files(tmp_path: Path) -> None:
    (tmp_path / "fleet").mkdir()
    path = tmp_path / "fleet" / "patchline.toml"
    path.write_text(to_toml(_document(tmp_path, registry_port=5123, port_base=30000, name_prefix="t1-")))
    config = load_config(path)
    assert config.build.registry == "127.0.0.1:5123"
    assert config.registries.insecure == ("127.0.0.1:5123",)
    assert config.store.url == f"sqlite:///{tmp_path / 'patchline.db'}"
    assert config.sign.keyring == tmp_path / "keys" and config.sign.policy == tmp_path / "policy.json"
    assert config.build.logs == tmp_path / "builds"
    assert config.events.amqp_url is None and not config.events.webhooks
    services = {s.name: s for s in config.services}
    example = load_config(EXAMPLE)
    assert set(services) == {f"t1-{s.name}" for s in example.services}
    # The example's offsets (web 18080-18082, web-admin 18090) kept from the new base.
    assert services["t1-web"].host_port == 30000 and services["t1-web-admin"].host_port == 30010
    lowest = min(s.host_port for s in example.services if s.host_port is not None)
    for s in example.services:
        moved = services[f"t1-{s.name}"].host_port
        assert moved == (None if s.host_port is None else 30000 + s.host_port - lowest)
    assert services["t1-web"].image == "web" and services["t1-web"].strategy == "canary"
    assert services["t1-web"].bake_seconds == 5.0
    assert [i.name for i in config.images] == ["base", "web", "web-admin", "tools", "worker"]


def test_default_options_keep_the_example_names_and_ports(tmp_path: Path) -> None:
    doc = _document(tmp_path)
    services = doc["services"]
    assert isinstance(services, list)
    ports = {s["name"]: s.get("host_port") for s in services}
    assert ports["web"] == 18080 and ports["web-admin"] == 18090


def test_toml_strings_are_escaped() -> None:
    doc = {"a": {"s": 'quote " back \\ tab \t é', "n": [1, 2.5, True], "t": {"x y": "z"}}}
    assert tomllib.loads(to_toml(doc)) == doc


@pytest.mark.parametrize(("option", "value", "message"), [
    ("name_prefix", "Bad Prefix", "--name-prefix"),
    ("registry_port", 0, "--registry-port"),
    ("port_base", 80, "--port-base"),
])
def test_bad_options_are_refused(tmp_path: Path, option: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_options(DemoOptions(workdir=tmp_path, **{option: value}))  # type: ignore[arg-type]


def test_a_directory_that_is_not_a_demo_is_neither_used_nor_purged(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no patchline demo"):
        claim_workdir(tmp_path)
    result = demo_down(tmp_path, purge=True)
    assert not result.found and not result.purged
    assert (tmp_path / "precious.txt").read_text() == "mine"


def test_demo_runs_without_a_subcommand_and_down_is_one() -> None:
    runner = CliRunner()
    up = runner.invoke(app, ["demo", "--help"])
    assert up.exit_code == 0, up.output
    assert "--registry-port" in up.output and "--port-base" in up.output and "down" in up.output
    down = runner.invoke(app, ["demo", "down", "--help"])
    assert down.exit_code == 0, down.output
    assert "--purge" in down.output and "--registry-port" not in down.output


def test_down_of_no_demo_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "down", "--workdir", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "no demo in" in result.stdout

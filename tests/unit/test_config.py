from __future__ import annotations

from pathlib import Path

import pytest

from patchline import load_config
from patchline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_no_file_is_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = load_config()
    assert config.source is None and config.cache.enabled and config.scan.catalogers is None


def test_the_example_file_is_valid() -> None:
    config = load_config(ROOT / "patchline.example.toml")
    assert config.registries.insecure == ()


def test_found_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    (tmp_path / "patchline.toml").write_text('[registries]\ninsecure = ["127.0.0.1:5000"]\n')
    assert load_config().registries.insecure == ("127.0.0.1:5000",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scan]\nstirct = true\n", "scan.stirct"),
        ("[scan]\ncatalogers = []\n", "empty cataloger list"),
        ("[cache\n", "patchline.toml"),
        ("[scan]\nstrict = 'yes please'\n", "scan.strict"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_an_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_assessment_sections(tmp_path: Path) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text(
        '[[updates.sources]]\nurl = "http://mirror.invalid/debian-security"\nsuite = "bookworm-security"\n'
        '[advisories]\nfeeds = ["/srv/osv"]\n'
        '[[ignore]]\nid = "CVE-2024-1"\nreason = "not reachable"\nexpires = 2027-01-31\n'
    )
    config = load_config(path)
    assert config.updates.sources[0].components == ("main",)
    assert config.ignore[0].expires is not None and config.ignore[0].expires.year == 2027


def test_update_source_must_be_http(tmp_path: Path) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text('[[updates.sources]]\nurl = "file:///srv/mirror"\nsuite = "x"\n')
    with pytest.raises(ConfigError, match="http"):
        load_config(path)


def test_the_example_files_commented_tables_are_valid_too(tmp_path: Path) -> None:
    """Uncommenting the example's [[images]] and [[services]] blocks gives a valid file (the docs stay true)."""
    lines = (ROOT / "patchline.example.toml").read_text().splitlines()
    out = []
    for line in lines:
        body = line[2:] if line.startswith("# ") else line
        if body.startswith(("[[images]]", "[[services]]", "glob =", "name =", "context =", "containerfile =",
                            "target =", "args =", "build_target =", "network =", "max_age_days =", "tests =",
                            '  "python3', "  { http", "]", "replicas =", "image =", "port =", "host_port =", "env =",
                            "command =", "podman_args =", "strategy =", "max_unavailable =", "bake_seconds =",
                            "auto_rollout =", "health =")):
            out.append(body)
        elif not line.startswith("#"):
            out.append(line)
    text = "\n".join(out)
    path = tmp_path / "patchline.toml"
    path.write_text(text)
    config = load_config(path)
    web = next(i for i in config.images if i.name == "web")
    assert [t.command or t.http for t in web.tests] == ["python3 -c 'import app'", "/healthz"]
    assert (config.build.network, web.network) == ("private", "host")
    service = config.services[0]
    assert (service.name, service.replicas, service.strategy, service.health.http) == ("web", 3, "canary",
                                                                                     "/healthz")


def test_the_example_fleet_is_valid() -> None:
    config = load_config(ROOT / "examples" / "fleet" / "patchline.toml")
    assert [s.name for s in config.services] == ["web", "web-admin", "tools"]
    assert {i.name: len(i.tests) for i in config.images}["web"] == 2


@pytest.mark.parametrize("text, why", [
    ('[[images]]\nname = "a"\ncontext = "."\ntests = [{ http = "/x" }]\n', "port"),
    ('[[images]]\nname = "a"\ncontext = "."\ntests = [{ command = "true", http = "/x", port = 1 }]\n', "exactly one"),
    ('[[services]]\nname = "web"\nimage = "web"\nport = 8080\n', "host_port go together"),
    ('[[services]]\nname = "web"\nimage = "web"\nhealth = { http = "/healthz" }\n', "needs port"),
    ('[[services]]\nname = "Web!"\nimage = "web"\n', "pattern"),
    ('[[services]]\nname = "w"\nimage = "w"\n[[services]]\nname = "w"\nimage = "v"\n', "unique"),
    ('[[services]]\nname = "w"\nimage = "w"\nstrategy = "blue-green"\n', "strategy"),
    ('[events]\nwebhooks = [{ url = "ftp://x" }]\n', "http"),
])
def test_bad_services_and_tests_are_refused(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=why):
        load_config(path)

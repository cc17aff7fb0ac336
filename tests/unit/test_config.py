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

"""A configuration error names the key and what is wrong with it, never a secret value written there."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline._config import load_config
from patchline.cli import app
from patchline.errors import ConfigError

PASSWORD = "hunter2-pw"
HOOK_PATH = "T000/B000/hookpathsecret"
TOKEN = "tok-9f8e7d"

# Each file is refused; the secret written in it must not show in the message, the detail or the cause.
BAD = {
    "dsn wrong type": (f'[store]\nurl = ["postgresql://u:{PASSWORD}@db/x"]\n', "store.url"),
    "amqp unknown key": (f'[events]\namqp_uri = "amqp://u:{PASSWORD}@mq.example/"\n', "events.amqp_uri"),
    "webhook not http": (f'[events]\nwebhooks = [{{ url = "ftp://hooks.example/{HOOK_PATH}" }}]\n',
                         "events.webhooks.0.url"),
    "webhook secret": (f'[events]\nwebhooks = [{{ url = "https://hooks.example/{HOOK_PATH}", secret = 5, '
                       f'typo = "{PASSWORD}" }}]\n', "events.webhooks.0"),
    "feed over http": (f'[advisories]\nfeeds = ["http://u:{PASSWORD}@osv.example/all.zip?token={TOKEN}"]\n',
                       "advisories.feeds"),
    "feed pin": (f'[advisories]\nfeeds = [{{ url = "https://osv.example/{HOOK_PATH}.zip?token={TOKEN}", '
                 f'sha256 = "zz" }}]\n', "advisories.feeds"),
    "env": (f'[[services]]\nname = "web"\nimage = "web"\nenv = {{ TOKEN = "{TOKEN}" }}\nport = 80\n',
            "host_port go together"),
    "env wrong type": (f'[[services]]\nname = "web"\nimage = "web"\nenv = {{ TOKEN = ["{TOKEN}"] }}\n',
                       "services.0.env.TOKEN"),
    "test env": (f'[[images]]\nname = "a"\ncontext = "."\ntests = [{{ command = "true", env = {{ T = "{TOKEN}" }}, '
                 f'timeout = -1 }}]\n', "images.0.tests.0.timeout"),
    "build args": (f'[build]\nargs = {{ NPM_TOKEN = "{TOKEN}" }}\njobs = -1\n', "build.jobs"),
}


def _secrets_in(text: str) -> list[str]:
    return [s for s in (PASSWORD, HOOK_PATH, TOKEN, "hookpathsecret") if s in text]


@pytest.mark.parametrize("case", BAD)
def test_config_errors_name_the_key_never_the_secret(tmp_path: Path, case: str) -> None:
    text, where = BAD[case]
    path = tmp_path / "patchline.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert where in str(error)
    assert "input_value" not in str(error)
    for shown in (str(error), error.detail or "", str(error.__cause__ or ""), str(error.__context__ or "")
                  if not error.__suppress_context__ else ""):
        assert _secrets_in(shown) == [], shown


def test_every_error_is_in_the_detail_without_its_value(tmp_path: Path) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text(f'[store]\nurl = 5\n[events]\nwebhooks = [{{ url = "ftp://hooks.example/{HOOK_PATH}", '
                    f'secret = 7 }}]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.detail == ("store.url: Input should be a valid string\n"
                                   "events.webhooks.0.url: Value error, a webhook URL must be http:// or https://\n"
                                   "events.webhooks.0.secret: Input should be a valid string")


def test_a_feed_url_in_a_message_keeps_only_its_host(tmp_path: Path) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text(BAD["feed over http"][0])
    with pytest.raises(ConfigError, match=r"advisory feed http://osv\.example/… is plain http://"):
        load_config(path)


@pytest.mark.parametrize("verbose", [[], ["-v"], ["-vv"]])
def test_the_cli_prints_no_secret_of_a_bad_config(tmp_path: Path, verbose: list[str]) -> None:
    path = tmp_path / "patchline.toml"
    path.write_text(BAD["dsn wrong type"][0] + BAD["webhook not http"][0] + BAD["env"][0])
    result = CliRunner().invoke(app, [*verbose, "--config", str(path), "status"])
    assert result.exit_code == 2
    assert "store.url" in result.stderr
    assert _secrets_in(result.stderr + result.stdout) == []


def test_the_cli_prints_no_password_of_a_bad_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHLINE_DB", f":://u:{PASSWORD}@db.example/fleet")
    result = CliRunner().invoke(app, ["-vv", "db", "status"])
    assert result.exit_code == 2
    assert "not a database URL" in result.stderr and _secrets_in(result.stderr + result.stdout) == []

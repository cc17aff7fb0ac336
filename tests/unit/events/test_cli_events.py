"""``patchline events``: deliver, list, status on a SQLite store and a real loopback webhook receiver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline.cli import app
from patchline.events._webhook import webhook_sink
from patchline.events.interface import EventDraft, EventType
from patchline.store import open_store
from tests.support.rabbitmq import WebhookReceiver


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.delenv("PATCHLINE_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def configure(directory: Path, url: str) -> Path:
    config = directory / "patchline.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{directory}/patchline.db"\n\n'
                      f'[events]\nsource = "/patchline/cli-test"\n\n[[events.webhooks]]\nurl = "{url}"\n'
                      'secret = "k"\n')
    return config


def emit(directory: Path, count: int) -> list[str]:
    with open_store(f"sqlite:///{directory}/patchline.db") as store:
        return store.emit([EventDraft(EventType.ROLLOUT_SUCCEEDED, f"svc{n}", {"n": n}) for n in range(count)])


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_deliver_list_status(workdir: Path) -> None:
    with WebhookReceiver() as receiver:
        configure(workdir, receiver.url)
        ids = emit(workdir, 3)
        code, out = run("events", "deliver", "--json")
        assert code == 0, out
        doc = json.loads(out)
        assert doc["schema"] == "patchline/events-delivery/v1"
        assert (doc["ok"], doc["delivered"], doc["backlog"]) == (True, 3, 0)
        assert [r.json()["id"] for r in receiver.requests] == ids

    code, out = run("events", "list", "--json", "--after", "1")
    assert code == 0, out
    assert [e["event_id"] for e in json.loads(out)["events"]] == ids[1:]
    code, out = run("events", "list", "--type", "image.rebuilt", "--json")
    assert json.loads(out)["events"] == []
    code, out = run("events", "list")
    assert code == 0 and "rollout.succeeded" in out and ids[0] in out

    code, out = run("events", "status", "--json")
    assert code == 0, out
    (sink,) = json.loads(out)["sinks"]
    assert sink["name"] == webhook_sink(receiver.url) and sink["configured"]
    assert (sink["backlog"], sink["attempts"], sink["last_error"]) == (0, 0, "")


def test_a_failing_sink_exits_1_and_status_shows_why(workdir: Path) -> None:
    with WebhookReceiver([500]) as receiver:
        configure(workdir, receiver.url)
        emit(workdir, 2)
        code, out = run("events", "deliver")
        assert code == 1
        assert "failed" in out and "HTTP 500" in out
        code, out = run("events", "status", "--json")
        (sink,) = json.loads(out)["sinks"]
        assert sink["attempts"] == 1 and sink["backlog"] == 2 and "HTTP 500" in sink["last_error"]
        assert sink["next_attempt_at"] is not None
        code, out = run("events", "deliver", "--wait", "10")  # waits out the 1 s backoff, then succeeds
        assert code == 0, out
        assert len(receiver.accepted()) == 2


def test_status_of_a_configured_sink_never_delivered(workdir: Path) -> None:
    configure(workdir, "http://127.0.0.1:9/never")
    emit(workdir, 4)
    code, out = run("events", "status", "--json")
    assert code == 0, out
    (sink,) = json.loads(out)["sinks"]
    assert (sink["delivered_seq"], sink["backlog"]) == (0, 4)


def test_no_sinks_configured_is_an_error(workdir: Path) -> None:
    (workdir / "patchline.toml").write_text(f'[store]\nurl = "sqlite:///{workdir}/patchline.db"\n')
    code, out = run("events", "deliver")
    assert code == 2 and "no event sinks configured" in out


def test_an_unsigned_webhook_is_warned_about(workdir: Path) -> None:
    (workdir / "patchline.toml").write_text(
        f'[store]\nurl = "sqlite:///{workdir}/patchline.db"\n\n'
        '[[events.webhooks]]\nurl = "http://127.0.0.1:9/hooks/secret-path"\n')
    result = CliRunner().invoke(app, ["events", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert "is unsigned" in result.stderr and "secret-path" not in result.stderr  # named redacted
    assert json.loads(result.stdout)["sinks"]
    configure(workdir, "http://127.0.0.1:9/hooks/secret-path")  # with a secret: no warning
    assert "unsigned" not in CliRunner().invoke(app, ["events", "status", "--json"]).stderr

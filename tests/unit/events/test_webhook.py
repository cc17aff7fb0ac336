"""Webhooks: CloudEvents bodies POSTed to a real loopback HTTP server, signed with HMAC-SHA256."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from patchline._config import WebhookConfig
from patchline.errors import ConfigError, EventError
from patchline.events._webhook import SIGNATURE_HEADER, WebhookPublisher, signature, wanted
from patchline.events.interface import Event
from tests.support.rabbitmq import WebhookReceiver

SOURCE = "/patchline/test"


def events(*types: str) -> list[Event]:
    when = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
    return [Event(seq=n, event_id=f"id-{n}", type=t, subject=f"svc-{n}", data={"n": n, "text": "é"}, time=when)
            for n, t in enumerate(types, 1)]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def test_each_event_is_one_signed_post_in_order(receiver: WebhookReceiver) -> None:
    secret = "s3cret-ключ"
    publisher = WebhookPublisher(WebhookConfig(url=receiver.url, secret=secret), source=SOURCE)
    batch = events("image.rebuilt", "rollout.started", "rollout.succeeded")
    publisher.publish(batch)
    publisher.close()
    assert [r.json()["id"] for r in receiver.requests] == ["id-1", "id-2", "id-3"]
    for request in receiver.requests:
        assert request.path == "/hook"
        assert request.headers["content-type"] == "application/cloudevents+json"
        # Signed: the event ID, the time it was sent and the body, as the receiver sees them.
        signed = f"{request.headers['x-patchline-id']}.{request.headers['x-patchline-timestamp']}.".encode()
        expected = hmac.new(secret.encode(), signed + request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["x-patchline-signature"], f"sha256={expected}")
        assert request.headers["x-patchline-id"] == request.json()["id"]
        parsed = from_http_event(HTTPMessage(request.headers, request.body))
        assert parsed.get_source() == SOURCE
    assert receiver.requests[1].json()["type"] == "io.patchline.rollout.started"


def _signed(request: Any, secret: str, **changes: Any) -> str:
    parts = {"event_id": request.headers["x-patchline-id"],
             "timestamp": int(request.headers["x-patchline-timestamp"]), **changes}
    return signature(request.body, secret, **parts)


def test_a_wrong_secret_does_not_verify(receiver: WebhookReceiver) -> None:
    WebhookPublisher(WebhookConfig(url=receiver.url, secret="right"), source=SOURCE).publish(events("image.rebuilt"))
    request = receiver.requests[0]
    assert request.headers["x-patchline-signature"] != _signed(request, "wrong")
    assert request.headers["x-patchline-signature"] == _signed(request, "right")


def test_the_signature_covers_the_id_and_the_time(receiver: WebhookReceiver,
                                                  freeze_clock: Callable[[dt.datetime], None]) -> None:
    freeze_clock(dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC))
    WebhookPublisher(WebhookConfig(url=receiver.url, secret="k"), source=SOURCE).publish(events("image.rebuilt"))
    request = receiver.requests[0]
    assert request.headers["x-patchline-timestamp"] == "1796472000"
    # A replay with a fresh timestamp, or the signature moved onto another event, does not verify.
    assert request.headers["x-patchline-signature"] != _signed(request, "k", timestamp=1796472000 + 3600)
    assert request.headers["x-patchline-signature"] != _signed(request, "k", event_id="another-event")
    assert request.headers["x-patchline-signature"] == _signed(request, "k")


def test_secret_from_the_environment(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHLINE_TEST_HOOK_KEY", "from-env")
    config = WebhookConfig(url=receiver.url, secret_env="PATCHLINE_TEST_HOOK_KEY")
    WebhookPublisher(config, source=SOURCE).publish(events("image.rebuilt"))
    request = receiver.requests[0]
    assert request.headers["x-patchline-signature"] == _signed(request, "from-env")


def test_a_missing_secret_env_is_refused_not_sent_unsigned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHLINE_TEST_HOOK_KEY", raising=False)
    with pytest.raises(ConfigError, match="PATCHLINE_TEST_HOOK_KEY is not set"):
        WebhookPublisher(WebhookConfig(url="http://127.0.0.1:9/x", secret_env="PATCHLINE_TEST_HOOK_KEY"))


def test_no_secret_no_signature(receiver: WebhookReceiver) -> None:
    WebhookPublisher(WebhookConfig(url=receiver.url), source=SOURCE).publish(events("image.rebuilt"))
    assert SIGNATURE_HEADER.lower() not in receiver.requests[0].headers


def test_types_filter_skips_events(receiver: WebhookReceiver) -> None:
    publisher = WebhookPublisher(WebhookConfig(url=receiver.url, types=("rollout",)), source=SOURCE)
    publisher.publish(events("image.rebuilt", "rollout.started", "image.verify_failed", "rollout.rolled_back"))
    assert [r.json()["type"] for r in receiver.requests] == ["io.patchline.rollout.started",
                                                             "io.patchline.rollout.rolled_back"]


@pytest.mark.parametrize(("event_type", "types", "expected"), [
    ("image.rebuilt", (), True),
    ("image.rebuilt", ("image",), True),
    ("image.rebuilt", ("image.",), True),
    ("image.rebuilt", ("image.rebuilt",), True),
    ("image.rebuilt", ("io.patchline.image",), True),
    ("image.rebuilt", ("image.re",), False),
    ("image.rebuilt", ("rollout",), False),
    ("rollout.rolled_back", ("image.rebuilt", "rollout.rolled_back"), True),
    ("rollout.rolled_back", ("rollout.rolled",), False),
])
def test_wanted(event_type: str, types: tuple[str, ...], expected: bool) -> None:
    assert wanted(event_type, types) is expected


def test_a_non_2xx_answer_is_an_error_naming_the_event() -> None:
    with WebhookReceiver([200, 503]) as server:
        publisher = WebhookPublisher(WebhookConfig(url=server.url), source=SOURCE)
        with pytest.raises(EventError, match=r"HTTP 503 Service Unavailable for event 2 \(rollout.started\)"):
            publisher.publish(events("image.rebuilt", "rollout.started", "rollout.succeeded"))
        assert len(server.requests) == 2  # it stops at the first refusal: order is kept


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connecting is refused
        url = f"http://127.0.0.1:{port}/hook"
        shown = rf"^webhook:http://127\.0\.0\.1:{port}/…#[0-9a-f]{{12}}: connection refused$"
        with pytest.raises(EventError, match=shown):
            WebhookPublisher(WebhookConfig(url=url), source=SOURCE).publish(events("image.rebuilt"))


def test_a_server_that_does_not_answer_times_out() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # the kernel accepts the connection; nobody reads or answers
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        with pytest.raises(EventError, match="timed out"):
            WebhookPublisher(WebhookConfig(url=url, timeout=0.3), source=SOURCE).publish(events("image.rebuilt"))


@pytest.mark.parametrize(("url", "shown"), [
    ("https://127.0.0.1:8443/p", "https://127.0.0.1:8443/…"),
    ("https://hooks.example.test/services/T000/B000/XXXXSECRET", "https://hooks.example.test/…"),
    ("https://user:pass@hooks.example.test/?token=SECRET", "https://hooks.example.test/…"),
    ("http://[::1]:9000/", "http://[::1]:9000/"),
    ("http://127.0.0.1:9", "http://127.0.0.1:9/"),
])
def test_the_sink_name_never_shows_the_url_path_query_or_password(url: str, shown: str) -> None:
    name = WebhookPublisher(WebhookConfig(url=url)).name
    assert name == f"webhook:{shown}#{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    assert "SECRET" not in name and "pass" not in name and "T000" not in name


def test_two_hooks_on_one_host_are_two_sinks() -> None:
    a, b = (WebhookPublisher(WebhookConfig(url=f"https://h.example.test/hooks/{x}")).name for x in "ab")
    assert a != b and a.startswith("webhook:https://h.example.test/…#")


def test_an_error_never_shows_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/SECRET"
        with pytest.raises(EventError) as caught:
            WebhookPublisher(WebhookConfig(url=url), source=SOURCE).publish(events("image.rebuilt"))
    assert "SECRET" not in str(caught.value) and "SECRET" not in repr(caught.value)

"""The AMQP publisher without a broker: routing keys, configuration errors, an unreachable broker."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from patchline.errors import ConfigError, EventError
from patchline.events._amqp import AmqpPublisher, routing_key
from patchline.events.interface import Event, EventType


@pytest.mark.parametrize(("event_type", "key"), [
    (EventType.IMAGE_REBUILT, "patchline.image.rebuilt"),
    (EventType.IMAGE_VERIFY_FAILED, "patchline.image.verify_failed"),
    (EventType.ROLLOUT_STARTED, "patchline.rollout.started"),
    (EventType.ROLLOUT_REPLICA_UPDATED, "patchline.rollout.replica_updated"),
    (EventType.ROLLOUT_SUCCEEDED, "patchline.rollout.succeeded"),
    (EventType.ROLLOUT_ROLLING_BACK, "patchline.rollout.rolling_back"),
    (EventType.ROLLOUT_ROLLED_BACK, "patchline.rollout.rolled_back"),
    (EventType.ROLLOUT_FAILED, "patchline.rollout.failed"),
])
def test_routing_keys(event_type: EventType, key: str) -> None:
    assert routing_key(event_type.value) == key


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def an_event() -> Event:
    return Event(1, "id-1", "image.rebuilt", "s", {}, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_unreachable_broker_is_one_clear_line_without_the_password() -> None:
    port = closed_port()
    publisher = AmqpPublisher(f"amqp://patchline:hunter2@127.0.0.1:{port}/%2F", connect_timeout=2)
    with pytest.raises(EventError) as caught:
        publisher.publish([an_event()])
    assert str(caught.value) == f"AMQP 127.0.0.1:{port}: connection refused"
    assert "hunter2" not in repr(publisher)
    with pytest.raises(EventError, match="connection refused"):  # and again: it reconnects each time
        publisher.publish([an_event()])
    publisher.close()


def test_nothing_to_publish_does_not_connect() -> None:
    AmqpPublisher(f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F").publish([])


@pytest.mark.parametrize("url", ["http://127.0.0.1:5672/", "127.0.0.1:5672", "amqp://127.0.0.1:notaport/"])
def test_a_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="AMQP URL"):
        AmqpPublisher(url)


def test_the_sink_name_is_stable() -> None:
    assert AmqpPublisher("amqp://guest:guest@127.0.0.1:1/%2F").name == "amqp"
    assert AmqpPublisher("amqp://other:pw@127.0.0.1:2/vhost").name == "amqp"

"""An outbox event as a CloudEvents 1.0 event in the structured JSON format (what AMQP and webhooks carry)."""

from __future__ import annotations

import datetime as dt
import json
import socket
from typing import Any

from patchline.events.interface import CLOUDEVENTS_TYPE_PREFIX, Event

CONTENT_TYPE = "application/cloudevents+json"
SPEC_VERSION = "1.0"
SEQ_EXTENSION = "patchlineseq"  # extension names are lowercase a-z0-9 only (CloudEvents 1.0, "Naming conventions")


def default_source() -> str:
    """``/patchline/HOSTNAME``: source plus id must be unique, and each host's outbox numbers its own events."""
    return f"/patchline/{socket.gethostname() or 'localhost'}"


def cloudevent_type(event_type: str) -> str:
    """``image.rebuilt`` -> ``io.patchline.image.rebuilt`` (reverse-DNS prefixed, as the spec recommends)."""
    return CLOUDEVENTS_TYPE_PREFIX + event_type


def rfc3339(when: dt.datetime) -> str:
    """UTC with a ``Z`` suffix and microseconds; a naive time is taken as UTC (how the store keeps it)."""
    utc = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def to_cloudevent(event: Event, *, source: str) -> dict[str, Any]:
    """The event's CloudEvents attributes and data; ``id`` is the outbox's event_id, the same on redelivery."""
    if not source:
        raise ValueError("a CloudEvents source must not be empty")
    document: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event.event_id,
        "source": source,
        "type": cloudevent_type(event.type),
        "time": rfc3339(event.time),
        "datacontenttype": "application/json",
        "data": dict(event.data),
        SEQ_EXTENSION: event.seq,
    }
    if event.subject:  # the spec: subject, when present, must be a non-empty string
        document["subject"] = event.subject
    return document


def encode(event: Event, *, source: str) -> bytes:
    """The structured-mode body: compact JSON with sorted keys, so a webhook signature covers stable bytes."""
    return json.dumps(to_cloudevent(event, source=source), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str).encode("utf-8")

"""The outbox's records: an event to write with a state change, and an event as stored.

On the floor because the store writes them in the same transaction as the state change it records, and the
event sinks (``patchline.events``, above the store) deliver them; ``patchline.events.interface`` is their
public name.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CLOUDEVENTS_TYPE_PREFIX", "ROUTING_PREFIX", "Event", "EventDraft", "EventType"]


class EventType(enum.StrEnum):
    IMAGE_REBUILT = "image.rebuilt"
    IMAGE_VERIFY_FAILED = "image.verify_failed"
    ROLLOUT_STARTED = "rollout.started"
    ROLLOUT_REPLICA_UPDATED = "rollout.replica_updated"
    ROLLOUT_SUCCEEDED = "rollout.succeeded"
    ROLLOUT_ROLLING_BACK = "rollout.rolling_back"
    ROLLOUT_ROLLED_BACK = "rollout.rolled_back"
    ROLLOUT_FAILED = "rollout.failed"
    RUN_FINISHED = "run.finished"
    POLICY_DENIED = "policy.denied"


ROUTING_PREFIX = "patchline."  # AMQP routing key: patchline.image.rebuilt
CLOUDEVENTS_TYPE_PREFIX = "io.patchline."  # CloudEvents type: io.patchline.image.rebuilt


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event to write into the outbox with a state change."""

    type: EventType
    subject: str  # what it is about: a repository@digest, a service
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """An event as stored in the outbox."""

    seq: int  # delivery order
    event_id: str  # a UUID; the same on every redelivery
    type: str
    subject: str
    data: Mapping[str, Any]
    time: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        """The event as ``patchline events list --json`` shows it (``time`` in ISO 8601, UTC as ``Z``)."""
        return {"seq": self.seq, "event_id": self.event_id, "type": self.type, "subject": self.subject,
                "time": self.time.isoformat().replace("+00:00", "Z"), "data": dict(self.data)}

"""Events: what the outbox holds and what a publisher does with it.

An event is written into the store's outbox (``events`` table) in the same
transaction as the state change it reports, then delivered at least once, in
order, to every configured sink (:class:`Publisher`), each with its own cursor.
A redelivered event carries the same ``event_id``: consumers deduplicate on it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class Publisher(Protocol):
    """One sink. ``name`` is stable: the store keeps the sink's cursor under it."""

    @property
    def name(self) -> str: ...

    def publish(self, events: Sequence[Event]) -> None:
        """Deliver these events in order, or raise :class:`~patchline.errors.EventError`.

        Returning means every one of them was accepted (broker confirm, HTTP 2xx);
        after an error the whole batch is sent again later.
        """
        ...

    def close(self) -> None: ...

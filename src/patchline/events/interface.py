"""Events: what the outbox holds and what a publisher does with it.

An event is written into the store's outbox (``events`` table) in the same
transaction as the state change it reports, then delivered at least once, in
order, to every configured sink (:class:`Publisher`), each with its own cursor.
A redelivered event carries the same ``event_id``: consumers deduplicate on it.

Each kind of sink is a publisher class (:class:`SinkKind`: ``from_config``, ``sink_names``),
a sibling module of this one, listed in ``events/list.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

# The outbox's records live on the floor (the store writes them); this is their public name.
from patchline._eventdata import CLOUDEVENTS_TYPE_PREFIX, ROUTING_PREFIX, Event, EventDraft, EventType

if TYPE_CHECKING:
    from patchline._config import EventsConfig

__all__ = ["CLOUDEVENTS_TYPE_PREFIX", "ROUTING_PREFIX", "Event", "EventDraft", "EventType", "Publisher", "SinkKind"]


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


class SinkKind(Protocol):
    """A kind of sink: a publisher class, and which sinks of its kind ``[events]`` configures."""

    kind: str  # "amqp", "webhook"
    configured_by: str  # how [events] adds one, for the message when no sink is configured

    def sink_names(self, config: EventsConfig) -> list[str]:
        """The names its configured sinks keep their cursors under (without connecting or reading secrets)."""
        ...

    def from_config(self, config: EventsConfig, *, source: str) -> Sequence[Publisher]:
        """A publisher per configured sink of this kind (none when ``[events]`` configures none)."""
        ...

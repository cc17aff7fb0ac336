"""The one explicit list of event sink kinds (STYLE.md 4), in the order their sinks are delivered to."""

from __future__ import annotations

from patchline.events._amqp import AmqpPublisher
from patchline.events._webhook import WebhookPublisher
from patchline.events.interface import SinkKind

__all__ = ["SINK_KINDS"]

SINK_KINDS: tuple[SinkKind, ...] = (
    AmqpPublisher,
    WebhookPublisher,
)

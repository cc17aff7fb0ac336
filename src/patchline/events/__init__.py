"""Events from the transactional outbox to RabbitMQ (AMQP topic exchange) and webhooks (CloudEvents, HMAC).

Typical use::

    store.record_build(..., events=[EventDraft(EventType.IMAGE_REBUILT, ref, payload)])  # one transaction
    report = deliver(store, publishers_from_config(config.events))    # at least once, in order, per sink
"""

from patchline.events._amqp import AmqpPublisher, routing_key
from patchline.events._cloudevents import default_source, encode, to_cloudevent
from patchline.events._deliver import (
    DeliveryReport,
    SinkDelivery,
    backoff_seconds,
    deliver,
    deliver_configured,
    deliver_until_empty,
    publishers_from_config,
    run_forever,
    sink_names,
)
from patchline.events._webhook import WebhookPublisher, legacy_webhook_sink, signature, webhook_sink
from patchline.events.interface import Event, EventDraft, EventType, Publisher, SinkKind
from patchline.events.list import SINK_KINDS

__all__ = [
    "SINK_KINDS",
    "AmqpPublisher",
    "DeliveryReport",
    "Event",
    "EventDraft",
    "EventType",
    "Publisher",
    "SinkDelivery",
    "SinkKind",
    "WebhookPublisher",
    "backoff_seconds",
    "default_source",
    "deliver",
    "deliver_configured",
    "deliver_until_empty",
    "encode",
    "legacy_webhook_sink",
    "publishers_from_config",
    "routing_key",
    "run_forever",
    "signature",
    "sink_names",
    "to_cloudevent",
    "webhook_sink",
]

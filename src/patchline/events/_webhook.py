"""POST outbox events to a webhook: CloudEvents 1.0 structured mode, signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import ClassVar

import httpx

from patchline import __version__, _clock
from patchline._config import EventsConfig, WebhookConfig
from patchline._http import tls_context
from patchline._redact import redact_url
from patchline.errors import ConfigError, EventError
from patchline.events._cloudevents import CONTENT_TYPE, default_source, encode
from patchline.events.interface import CLOUDEVENTS_TYPE_PREFIX, Event

SIGNATURE_HEADER = "X-Patchline-Signature"


def webhook_sink(url: str) -> str:
    """The sink's name in the outbox: ``webhook:`` + the redacted URL + ``#`` + 12 hex of the whole URL's
    SHA-256, so that two hooks on one host are two sinks and the secret part is never shown."""
    return f"webhook:{redact_url(url)}#{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def legacy_webhook_sink(url: str) -> str:
    """The name sinks had before it was redacted: its cursor row is renamed, not started afresh."""
    return "webhook:" + url


ID_HEADER = "X-Patchline-Id"
TIMESTAMP_HEADER = "X-Patchline-Timestamp"


def signature(body: bytes, secret: str, *, event_id: str, timestamp: int) -> str:
    """``sha256=HEX``: HMAC-SHA256 of ``ID.TIMESTAMP.BODY`` (the event ID, the Unix time it was sent, the exact
    body bytes). A receiver recomputes it with the shared secret from the ``X-Patchline-Id`` and
    ``X-Patchline-Timestamp`` headers, refuses an old timestamp and an ID it has seen: a captured request
    cannot be replayed later, and a signature cannot be moved to another event."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def wanted(event_type: str, prefixes: Sequence[str]) -> bool:
    """Whether a webhook with this ``types`` filter takes the event.

    No filter takes all; ``rollout`` takes ``rollout.*``, ``image.rebuilt`` itself (a prefix ends at a dot,
    so ``image.re`` takes nothing); the CloudEvents form ``io.patchline.rollout`` is accepted too.
    """
    if not prefixes:
        return True
    for prefix in prefixes:
        prefix = prefix.removeprefix(CLOUDEVENTS_TYPE_PREFIX).rstrip(".")
        if event_type == prefix or event_type.startswith(prefix + "."):
            return True
    return False


def webhook_secret(config: WebhookConfig) -> str | None:
    """The HMAC key: ``secret``, else the variable named by ``secret_env`` (which must then be set)."""
    if config.secret:
        return config.secret
    if config.secret_env:
        value = os.environ.get(config.secret_env)
        if not value:
            raise ConfigError(f"webhook {redact_url(config.url)}: secret_env {config.secret_env} is not set; "
                              "refusing to send unsigned events")
        return value
    return None


class WebhookPublisher:
    """A sink on one URL: each event is one POST, in order; 2xx means accepted."""

    kind: ClassVar[str] = "webhook"
    configured_by: ClassVar[str] = "add [[events.webhooks]]"

    @classmethod
    def sink_names(cls, config: EventsConfig) -> list[str]:
        return [webhook_sink(hook.url) for hook in config.webhooks]

    @classmethod
    def from_config(cls, config: EventsConfig, *, source: str) -> list[WebhookPublisher]:
        """One publisher per ``[[events.webhooks]]`` (sink ``webhook:…``, see :func:`webhook_sink`)."""
        return [cls(hook, source=source) for hook in config.webhooks]

    def __init__(self, config: WebhookConfig, *, source: str | None = None) -> None:
        self.config = config
        self.source = source or default_source()
        self._secret = webhook_secret(config)
        self._client: httpx.Client | None = None

    @property
    def name(self) -> str:
        return webhook_sink(self.config.url)

    @property
    def renamed_from(self) -> str:
        return legacy_webhook_sink(self.config.url)

    def __repr__(self) -> str:
        return f"WebhookPublisher({self.name})"

    def request_for(self, event: Event) -> tuple[bytes, dict[str, str]]:
        """The body and headers one event is POSTed with."""
        body = encode(event, source=self.source)
        timestamp = int(_clock.now().timestamp())
        headers = {"Content-Type": CONTENT_TYPE, ID_HEADER: event.event_id, TIMESTAMP_HEADER: str(timestamp)}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(body, self._secret, event_id=event.event_id, timestamp=timestamp)
        return body, headers

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.timeout, follow_redirects=False, verify=tls_context(),
                                        headers={"User-Agent": f"patchline/{__version__}"})
        return self._client

    def publish(self, events: Sequence[Event]) -> None:
        """POST each wanted event; events the ``types`` filter leaves out are passed over (and count as sent)."""
        for event in events:
            if not wanted(event.type, self.config.types):
                continue
            body, headers = self.request_for(event)
            try:
                response = self._http().post(self.config.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise EventError(f"{self.name}: {_transport_error(exc).replace(self.config.url, self.name)}") from exc
            if not response.is_success:
                reason = response.reason_phrase or "error"
                raise EventError(f"{self.name}: HTTP {response.status_code} {reason} "
                                 f"for event {event.seq} ({event.type})",
                                 detail=response.text[:500] or None)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        return "connection refused" if "refused" in text.lower() else f"cannot connect ({text})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

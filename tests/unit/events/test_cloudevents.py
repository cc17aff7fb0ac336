"""An outbox event as CloudEvents 1.0 structured JSON, read back by the CloudEvents SDK as the oracle."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from patchline.events._cloudevents import CONTENT_TYPE, default_source, encode, rfc3339, to_cloudevent
from patchline.events.interface import Event, EventType

WHEN = dt.datetime(2026, 11, 22, 9, 30, 15, 250000, tzinfo=dt.UTC)
SOURCE = "/patchline/build-host"
# CloudEvents 1.0 "Naming conventions": attribute names are lowercase a-z and 0-9, at most 20 characters.
ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")


def event(seq: int = 7, *, type_: str = EventType.IMAGE_REBUILT.value, subject: str = "localhost/app@sha256:ab",
          when: dt.datetime = WHEN, data: dict[str, object] | None = None) -> Event:
    return Event(seq=seq, event_id=f"0b6a2d8e-3c47-4f7e-9a42-{seq:012d}", type=type_, subject=subject,
                 data={"old": "sha256:aa", "new": "sha256:bb"} if data is None else data, time=when)


def test_required_and_optional_attributes() -> None:
    document = to_cloudevent(event(), source=SOURCE)
    assert document == {
        "specversion": "1.0",
        "id": "0b6a2d8e-3c47-4f7e-9a42-000000000007",
        "source": SOURCE,
        "type": "io.patchline.image.rebuilt",
        "subject": "localhost/app@sha256:ab",
        "time": "2026-11-22T09:30:15.250000Z",
        "datacontenttype": "application/json",
        "data": {"old": "sha256:aa", "new": "sha256:bb"},
        "patchlineseq": 7,
    }
    assert all(ATTRIBUTE_NAME.match(name) for name in document if name != "data")


@pytest.mark.parametrize("event_type", list(EventType))
def test_the_sdk_reads_every_event_type(event_type: EventType) -> None:
    body = encode(event(type_=event_type.value), source=SOURCE)
    parsed = from_http_event(HTTPMessage({"content-type": CONTENT_TYPE}, body))
    assert parsed.get_type() == "io.patchline." + event_type.value
    assert parsed.get_id() == "0b6a2d8e-3c47-4f7e-9a42-000000000007"
    assert parsed.get_source() == SOURCE
    assert parsed.get_time() == WHEN
    assert parsed.get_extension("patchlineseq") == 7
    assert parsed.get_data() == {"old": "sha256:aa", "new": "sha256:bb"}


@pytest.mark.parametrize(("when", "text"), [
    (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02T03:04:05.000000Z"),
    (dt.datetime(2026, 1, 2, 5, 4, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2026-01-02T03:04:05.000001Z"),
    (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000000Z"),  # naive: the store's UTC
])
def test_time_is_rfc3339_utc(when: dt.datetime, text: str) -> None:
    assert rfc3339(when) == text
    assert dt.datetime.fromisoformat(text) == (when if when.tzinfo else when.replace(tzinfo=dt.UTC))


def test_encode_is_compact_sorted_json_of_the_mapping() -> None:
    data = {"zeta": 1, "alpha": ["ü", None], "nested": {"b": 2, "a": 1}}
    body = encode(event(data=data), source=SOURCE)
    document = to_cloudevent(event(data=data), source=SOURCE)
    assert body == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(body) == document
    assert b'": ' not in body and b'", "' not in body  # compact separators
    assert body.index(b'"data"') < body.index(b'"id"') < body.index(b'"type"')


def test_an_empty_subject_is_left_out() -> None:
    # The spec: subject, when present, must be non-empty.
    document = to_cloudevent(event(subject=""), source=SOURCE)
    assert "subject" not in document
    from_http_event(HTTPMessage({"content-type": CONTENT_TYPE}, encode(event(subject=""), source=SOURCE)))


def test_an_empty_source_is_refused() -> None:
    with pytest.raises(ValueError, match="source"):
        to_cloudevent(event(), source="")


def test_default_source_names_the_host() -> None:
    assert default_source() == f"/patchline/{socket.gethostname()}"

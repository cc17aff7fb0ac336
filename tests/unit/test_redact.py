"""Secrets out of messages: known values, URL passwords, webhook paths."""

from __future__ import annotations

import pytest

from patchline._redact import redact, redact_passwords, redact_url, secret_strings


@pytest.mark.parametrize(("text", "values", "redacted"), [
    ("token=s3cr3t-token; again s3cr3t-token", ["s3cr3t-token"], "token=[redacted]; again [redacted]"),
    ("abcdef", ["abc", "abcdef"], "[redacted]"),  # the longest value first
    ("exit 1", ["1", "yes"], "exit 1"),  # too short to blank out
])
def test_redact(text: str, values: list[str], redacted: str) -> None:
    assert redact(text, values) == redacted


def test_a_url_value_keeps_its_host() -> None:
    url = "https://hooks.example/services/T000/B000/XXXX?token=abc"
    assert redact(f"bad hook {url}", [url], urls=True) == "bad hook https://hooks.example/…"


@pytest.mark.parametrize(("text", "redacted"), [
    ("postgresql+psycopg://patchline:hunter2@db.example:5432/fleet failed",
     "postgresql+psycopg://patchline:[redacted]@db.example:5432/fleet failed"),
    ("amqp://u:p%40ss:word@mq.example/", "amqp://u:[redacted]@mq.example/"),
    (":://u:hunter2@h", ":://u:[redacted]@h"),
    ("host=db user=u password='hun ter2' dbname=x", "host=db user=u password=[redacted] dbname=x"),
    ("password=hunter2 sslmode=require", "password=[redacted] sslmode=require"),
    ("https://mirror.example/debian bookworm", "https://mirror.example/debian bookworm"),  # nothing to hide
    ("postgresql://u@db.example/fleet", "postgresql://u@db.example/fleet"),
])
def test_redact_passwords(text: str, redacted: str) -> None:
    assert redact_passwords(text) == redacted


def test_redact_url_keeps_scheme_host_and_port() -> None:
    assert redact_url("https://u:pw@hooks.example:8443/T000/secret?x=1") == "https://hooks.example:8443/…"
    assert redact_url("http://[::1]:9000/") == "http://[::1]:9000/"


def test_secret_strings_walks_parameters() -> None:
    assert secret_strings({"a": "x", "b": [("y", 3), b"z"]}) == ["x", "y", "z"]
    assert secret_strings(None) == [] and secret_strings(7) == []

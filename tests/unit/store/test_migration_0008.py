"""Migration 0008 takes secrets out of an existing store: legacy webhook sink names and rollout env values."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from patchline.events._webhook import webhook_sink
from patchline.store import upgrade
from patchline.store._engine import make_engine

HOOK = "https://chat.example/hooks/T000/B000/s3cr3t-token"


def test_secrets_are_redacted_and_cursors_kept(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine, "0007")
    spec = {"service": {"name": "web", "env": {"API_TOKEN": "s3cr3t", "MODE": "prod"}}, "max_unavailable": 1,
            "bake_seconds": 0}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO event_sinks (name, delivered_seq, attempts, last_error, owner) "
                          "VALUES (:n, 41, 1, :e, '')"), {"n": f"webhook:{HOOK}", "e": f"POST {HOOK}: HTTP 500"})
        conn.execute(text("INSERT INTO event_sinks (name, delivered_seq, attempts, last_error, owner) "
                          "VALUES ('amqp', 7, 0, '', '')"))
        conn.execute(text("INSERT INTO rollouts (service, strategy, state, phase, to_image, spec, owner, reason, "
                          "timings, started_at) VALUES ('web', 'rolling', 'succeeded', 'done', 'r@sha256:1', :s, "
                          "'', '', '{}', '2026-12-01 10:00:00')"), {"s": json.dumps(spec)})
    upgrade(engine)
    with engine.begin() as conn:
        sinks = dict(conn.execute(text("SELECT name, delivered_seq FROM event_sinks")).all())
        errors = [e for (e,) in conn.execute(text("SELECT last_error FROM event_sinks"))]
        [stored] = [json.loads(s) for (s,) in conn.execute(text("SELECT spec FROM rollouts"))]
    assert sinks == {webhook_sink(HOOK): 41, "amqp": 7}  # the cursor kept: nothing redelivered
    assert not any("s3cr3t" in e for e in errors)
    assert stored["service"]["env"] == ["API_TOKEN", "MODE"] and "s3cr3t" not in json.dumps(stored)

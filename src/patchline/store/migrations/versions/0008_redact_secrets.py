"""Secrets out of the store: webhook sinks still named by their full URL, and rollouts' stored environment values.

Before stop 12 a webhook sink was named ``webhook:`` + its URL (whose path or query is often the hook's secret);
before this revision a rollout stored its service's environment values (often secrets). Sinks are renamed to
``webhook:scheme://host/…#HASH`` as patchline names them now (their cursor kept; an error message naming the URL
names the sink instead), and a rollout keeps only its environment's names. The functions are copied here, not
imported: a migration must do tomorrow what it does today.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _redacted(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    tail = "/…" if parts.path.strip("/") or parts.query else "/"
    redacted = f"{parts.scheme}://{host}{f':{port}' if port else ''}{tail}"
    return f"webhook:{redacted}#{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def upgrade() -> None:
    conn = op.get_bind()
    sinks = sa.table("event_sinks", sa.column("name", sa.String), sa.column("last_error", sa.Text))
    names = {name for (name,) in conn.execute(sa.select(sinks.c.name))}
    for name, error in conn.execute(sa.select(sinks.c.name, sinks.c.last_error)).all():
        url = name.removeprefix("webhook:")
        if not name.startswith("webhook:") or not url.startswith(("http://", "https://")) or "…" in url:
            continue
        new = _redacted(url)
        if new in names:  # already delivered under the new name: the legacy cursor is stale
            conn.execute(sa.delete(sinks).where(sinks.c.name == name))
            continue
        conn.execute(sa.update(sinks).where(sinks.c.name == name)
                     .values(name=new, last_error=(error or "").replace(url, new)))
        names.add(new)

    rollouts = sa.table("rollouts", sa.column("id", sa.Integer), sa.column("spec", sa.Text))
    for ident, text in conn.execute(sa.select(rollouts.c.id, rollouts.c.spec)).all():
        try:
            spec = json.loads(text)
        except (TypeError, ValueError):
            continue
        service = spec.get("service") if isinstance(spec, dict) else None
        if isinstance(service, dict) and isinstance(service.get("env"), dict):
            service["env"] = sorted(service["env"])
            conn.execute(sa.update(rollouts).where(rollouts.c.id == ident).values(spec=json.dumps(spec)))


def downgrade() -> None:
    pass  # what was redacted is not brought back

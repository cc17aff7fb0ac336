"""Alembic environment: patchline runs migrations itself (``Store.upgrade``), on the connection it passes."""

from __future__ import annotations

from alembic import context

from patchline.store._schema import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the project's own calls run this
    raise RuntimeError("patchline's migrations run through patchline.store (they need a connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER by copying the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

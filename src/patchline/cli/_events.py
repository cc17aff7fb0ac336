"""``patchline events``: deliver the outbox to AMQP and webhooks, list it, show where each sink stands."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patchline import _clock
from patchline._term import escape
from patchline.cli._options import DbOption, JsonOption, open_db, state
from patchline.cli._output import dump, emit, stderr
from patchline.errors import Error

if TYPE_CHECKING:
    from patchline._config import EventsConfig
    from patchline.events import DeliveryReport, SinkDelivery
    from patchline.events.interface import Event, Publisher
    from patchline.store import SinkRow

events_app = typer.Typer(help="The event outbox: deliver it to AMQP and webhooks, list it, show each sink.",
                         rich_markup_mode=None,
                         no_args_is_help=True)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _state(sink: SinkDelivery) -> str:
    if sink.held_by:
        return f"[yellow]left to {escape(sink.held_by)}[/]"
    if not sink.failed:
        return "[green]ok[/]"
    return "[yellow]waiting[/]" if sink.waiting else "[bold red]failed[/]"


def _report_table(report: DeliveryReport, console: Console) -> None:
    table = Table(title=f"events delivered ({report.seconds:.2f} s)", title_justify="left", show_edge=False,
                  pad_edge=False)
    for column in ("SINK", "STATE", "DELIVERED", "BACKLOG", "ATTEMPTS", "NEXT RETRY", "ERROR"):
        table.add_column(column, overflow="fold")
    for s in report.sinks:
        table.add_row(escape(s.name), _state(s), str(s.delivered), str(s.backlog), str(s.attempts or ""),
                      _when(s.next_attempt_at) if s.failed else "", escape(s.error))
    console.print(table)


def _report_doc(report: DeliveryReport) -> dict[str, Any]:
    return {"ok": report.ok, "delivered": report.delivered, "backlog": report.backlog,
            "seconds": round(report.seconds, 3), "sinks": list(report.sinks)}


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, so ``--follow`` finishes the batch it is sending."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _follow_line(report: DeliveryReport, last: dict[str, str]) -> None:
    """One stderr line per sink whose state changed or that delivered something."""
    for s in report.sinks:
        now = "failed" if s.failed else ("held" if s.held_by else "ok")
        if s.delivered or last.get(s.name) != now:
            detail = f"failing: {s.error} (retry {_when(s.next_attempt_at)})" if s.failed else (
                f"left to {s.held_by}, which is delivering to it" if s.held_by else "ok")
            stderr.print(f"{_when(_clock.now())} {escape(s.name)}: {s.delivered} delivered, "
                         f"backlog {s.backlog}; {escape(detail)}", soft_wrap=True)
        last[s.name] = now


def _close(publishers: Sequence[Publisher]) -> None:
    for p in publishers:
        with contextlib.suppress(Error):  # best effort: the outbox keeps whatever was not confirmed
            p.close()


@events_app.command("deliver")
def deliver_command(
    db: DbOption = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep delivering new events until "
                                                                "interrupted (SIGINT, SIGTERM).")] = False,
    wait: Annotated[float | None, typer.Option("--wait", min=0, metavar="SECONDS",
                                               help="Retry failing sinks (after their backoff) until the "
                                                    "outbox is delivered or SECONDS have passed.")] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.05, metavar="SECONDS",
                                        help="With --follow: how often the outbox is read.")] = 1.0,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Events per publish.")] = 500,
    json_output: JsonOption = False,
) -> None:
    """Send undelivered events, in order, to every configured sink ([events] in patchline.toml).

    Exits 1 when a sink is failing at the end (its events stay in the outbox and are sent again later).
    """
    from patchline.events import deliver, deliver_until_empty, publishers_from_config, run_forever

    config = state.config().events
    publishers = publishers_from_config(config)
    _warn_unsigned(config)
    try:
        with open_db(db) as store:
            if follow:
                last: dict[str, str] = {}
                totals: dict[str, int] = {}
                reports: list[DeliveryReport] = []

                def seen(report: DeliveryReport) -> None:
                    reports[:] = [report]
                    for sink in report.sinks:
                        totals[sink.name] = totals.get(sink.name, 0) + sink.delivered
                    _follow_line(report, last)

                with _stop_on_signals() as stop:
                    run_forever(store, publishers, stop=stop, poll=poll, batch=batch,
                                max_backoff=config.max_backoff_seconds, on_report=seen)
                report = reports[0] if reports else deliver(store, publishers, batch=batch,
                                                            max_backoff=config.max_backoff_seconds)
                # The summary counts what the whole run delivered, not only its last pass.
                report = dataclasses.replace(report, sinks=tuple(
                    dataclasses.replace(s, delivered=totals.get(s.name, s.delivered)) for s in report.sinks))
            elif wait is not None:
                report = deliver_until_empty(store, publishers, timeout=wait, batch=batch,
                                             max_backoff=config.max_backoff_seconds)
            else:
                report = deliver(store, publishers, batch=batch, max_backoff=config.max_backoff_seconds)
    finally:
        _close(publishers)
    if json_output:
        emit(None, text=dump("patchline/events-delivery/v1", _report_doc(report)))
    else:
        emit(None, table=lambda console: _report_table(report, console))
    if not report.ok:
        raise typer.Exit(1)


def _events_table(events: list[Event], console: Console) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("SEQ", "TIME", "TYPE", "SUBJECT", "EVENT ID"):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(str(e.seq), _when(e.time), escape(e.type), escape(e.subject), e.event_id)
    console.print(table)
    if not events:
        console.print("no events")


@events_app.command("list")
def list_command(
    db: DbOption = None,
    after: Annotated[int, typer.Option("--after", min=0, metavar="SEQ", help="Only events after this one.")] = 0,
    types: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only this event type, e.g. "
                                                                         "image.rebuilt (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """The outbox's events, oldest first."""
    with open_db(db) as store:
        events = store.events(after=after, limit=limit, types=types or ())
    if json_output:
        emit(None, text=dump("patchline/events/v1", {"events": [e.as_dict() for e in events]}))
    else:
        emit(None, table=lambda console: _events_table(events, console))


def _status_rows(rows: list[SinkRow], configured: list[str]) -> list[dict[str, Any]]:
    by_name = {r.name: r for r in rows}
    out = []
    for name in [*configured, *sorted(set(by_name) - set(configured))]:
        r = by_name.get(name)
        out.append({"name": name, "configured": name in configured,
                    "delivered_seq": r.delivered_seq if r else 0, "backlog": r.backlog if r else None,
                    "attempts": r.attempts if r else 0, "next_attempt_at": r.next_attempt_at if r else None,
                    "last_error": r.last_error if r else "", "updated_at": r.updated_at if r else None,
                    "delivering": r.owner if r else ""})
    return out


def _status_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("SINK", "STATE", "DELIVERED UP TO", "BACKLOG", "ATTEMPTS", "NEXT RETRY", "LAST ERROR"):
        table.add_column(column, overflow="fold")
    for r in rows:
        state_text = "[bold red]failing[/]" if r["attempts"] else "[green]ok[/]"
        if r["delivering"]:
            state_text += f" [dim](delivering: {escape(r['delivering'])})[/]"
        if not r["configured"]:
            state_text += " [dim](not configured)[/]"
        table.add_row(escape(r["name"]), state_text, str(r["delivered_seq"]), str(r["backlog"]),
                      str(r["attempts"] or ""), _when(r["next_attempt_at"]), escape(r["last_error"]))
    console.print(table)
    if not rows:
        console.print("no sinks: none configured (\\[events] in patchline.toml) and none delivered to before")


def _warn_unsigned(events: EventsConfig) -> None:
    """A webhook without a secret sends events nobody can tell from forged ones: say so every time."""
    from patchline.events import webhook_sink

    for hook in events.webhooks:
        if not hook.secret and not hook.secret_env:
            stderr.print(f"[yellow]warning:[/] {escape(webhook_sink(hook.url))} is unsigned (no secret or "
                         "secret_env): its receiver cannot tell patchline's events from forged ones")


@events_app.command("status")
def status_command(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Each sink: how far it is delivered, its backlog, its last error and next retry."""
    from patchline.events import legacy_webhook_sink, sink_names, webhook_sink

    events = state.config().events
    _warn_unsigned(events)
    configured = sink_names(events)
    with open_db(db) as store:
        for hook in events.webhooks:  # rows from before sink names were redacted
            store.rename_sink(legacy_webhook_sink(hook.url), webhook_sink(hook.url))
        rows = _status_rows(store.sinks(), configured)
        for r in rows:
            if r["backlog"] is None:  # configured, never delivered to: the whole outbox waits
                r["backlog"] = store.sink(r["name"]).backlog
    if json_output:
        emit(None, text=dump("patchline/events-status/v1", {"sinks": rows}))
    else:
        emit(None, table=lambda console: _status_table(rows, console))

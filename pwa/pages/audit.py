"""The audit trail in plain sentences: who did what to whose record, when, on which device; filtered by child,
worker and days.

`/audit` is a manager's trail across the teams they manage; `/child/{id}/audit` is one child's (the child
page's "Audit trail" button), which an administrator may read too, without the child's name. The filters are
the page's query (`?child=&worker=&since=&until=`), so a filtered trail can be bookmarked or sent on. The
store refuses, and audits, anyone else (storage/audit_trail.py).
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from nicegui import ui

from pwa import state
from pwa.auth import current_worker, is_admin
from pwa.layout import frame
from pwa.threads import io_bound
from storage.audit_trail import PAGE_SIZE, ReadTrail, TrailFilter, read_trail
from storage.store import NotAllowed

NOT_MANAGED = "Not found: that child is not in a team you manage, or does not exist."


def parse_day(text: str) -> date | None:
    """A filter's day as the date picker sends it (2027-03-04); raises ValueError for anything else."""
    return date.fromisoformat(text) if text else None


def filters_form(trail: ReadTrail, filters: TrailFilter, path: str) -> None:
    """The filters, applied by reloading the page with them as its query."""
    with ui.expansion("Filter the trail", icon="filter_list", value=True).classes("w-full border rounded"):
        child = None
        if trail.children:
            child = ui.select({"": "All children", **trail.children}, value=filters.child_id, label="Child").props(
                "outlined").classes("w-full").mark("filter-child")
        worker = ui.select({"": "Everyone", **trail.workers}, value=filters.worker_id if filters.worker_id in
                           trail.workers else "", label="Who did it").props("outlined").classes("w-full").mark(
            "filter-worker")
        with ui.row().classes("w-full no-wrap gap-2"):
            since = ui.input("From", value=filters.since.isoformat() if filters.since else "").props(
                "type=date outlined stack-label").classes("grow min-w-0").mark("filter-since")
            until = ui.input("To", value=filters.until.isoformat() if filters.until else "").props(
                "type=date outlined stack-label").classes("grow min-w-0").mark("filter-until")

        def apply() -> None:
            query = {"child": (child.value or "") if child is not None else "", "worker": worker.value or "",
                     "since": since.value or "", "until": until.value or ""}
            # A manager's filters go to the teams' trail (the child is one of them); an administrator's stay
            # on the one child's trail they may read.
            where = "/audit" if child is not None else path
            if child is None:
                query.pop("child")
            ui.navigate.to(f"{where}?{urlencode({k: v for k, v in query.items() if v})}")

        ui.button("Show", icon="search", on_click=apply).classes("w-full h-12").mark("filter-apply")


def show_lines(trail: ReadTrail) -> None:
    count = f"{len(trail.lines)} {'event' if len(trail.lines) == 1 else 'events'}, newest first."
    if trail.more:
        count = f"The newest {PAGE_SIZE} events. Narrow the filters to see older ones."
    ui.label(count + " The trail is append-only: `seen audit verify` checks that no event was changed or removed."
             ).classes("text-sm").mark("trail-count")
    if not trail.lines:
        ui.label("Nothing matches these filters.")
    with ui.element("ol").classes("w-full list-none p-0 m-0"):
        for line in trail.lines:
            with ui.element("li").classes("w-full border-b py-2").props(f'data-seq="{line.seq}"'):
                ui.label(line.sentence).classes("break-words")
                if line.notes:
                    ui.label(" · ".join(line.notes)).classes("text-sm text-gray-800 break-words")


async def trail_page(child: str = "", worker: str = "", since: str = "", until: str = "") -> None:
    """A manager's trail across their teams (or, with `child`, one child's)."""
    await show_trail(child, worker, since, until, path="/audit")


async def child_trail_page(child_id: str, worker: str = "", since: str = "", until: str = "") -> None:
    await show_trail(child_id, worker, since, until, path=f"/child/{child_id}/audit")


async def show_trail(child_id: str, worker_id: str, since: str, until: str, *, path: str) -> None:
    reader = current_worker()
    back = "/admin" if is_admin(reader) else "/team"
    problem = ""
    try:
        filters = TrailFilter(child_id, worker_id, parse_day(since), parse_day(until))
    except ValueError:
        problem = "Enter the days as dates, like 2027-03-04. The trail below is not filtered by day."
        filters = TrailFilter(child_id, worker_id)
    if filters.since and filters.until and filters.since > filters.until:
        problem = "The 'From' day is after the 'To' day, so nothing could match. The trail below is not filtered by day."
        filters = TrailFilter(child_id, worker_id)
    try:
        trail = await io_bound(read_trail, state.store(), reader, filters)
    except NotAllowed as refusal:
        with frame("Audit trail", back="/"):
            ui.label(NOT_MANAGED if child_id else str(refusal)).props('role="alert"')
        return
    with frame("Audit trail", back=back):
        if filters.child_id:
            title = trail.child_name or f"Child {filters.child_id[:8]}"
        else:
            title = "Every child in your teams"
        ui.label(title).classes("text-xl font-bold").props('role="heading" aria-level="2"')
        if problem:
            ui.label(problem).classes("font-bold text-red-800").props('role="alert"')
        filters_form(trail, filters, path)
        show_lines(trail)


def register() -> None:
    ui.page("/audit", title="Audit trail · Seen")(trail_page)
    ui.page("/child/{child_id}/audit", title="Audit trail · Seen")(child_trail_page)

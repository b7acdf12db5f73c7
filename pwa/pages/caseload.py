"""My caseload: the worker's children, worst clock first, one tap to the child or to log a visit."""

from __future__ import annotations

from collections import Counter
from datetime import date

from nicegui import run, ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import STATUS_STYLE, frame, status_badge
from storage.caseload import CaseloadRow, caseload
from storage.child_view import clock_name
from storage.models import CATEGORY_LABELS, Worker
from storage.store import Store
from storage.timescales import Clock
from storage.visits import children_with_drafts


def clock_line(clock: Clock, today: date | None = None) -> str:
    """"Statutory visit due 4 Dec 2026 (in 11 days)": the clock, its date and how far off it is."""
    days = (clock.due - (today or date.today())).days
    when = ("today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}" if days > 0
            else f"{-days} day{'s' if days != -1 else ''} overdue")
    return f"{clock_name(clock)} due {clock.due:%-d %b %Y} ({when})"


def place_line(row: CaseloadRow) -> str:
    parts = [CATEGORY_LABELS.get(row.category, row.category)]
    if row.age is not None:
        parts.append(f"age {row.age}")
    if row.placement_town:
        parts.append(row.placement_town)
    return " · ".join(parts)


def _load(store: Store, worker: Worker) -> tuple[list[CaseloadRow], set[str]]:
    return caseload(store, worker), children_with_drafts(store, worker)


def child_card(row: CaseloadRow, has_draft: bool) -> None:
    with ui.card().classes("w-full p-3 gap-1").props(f'data-child="{row.child_id}"'):
        with ui.row().classes("w-full items-center no-wrap gap-2"):
            ui.link(row.name, f"/child/{row.child_id}").classes(
                "text-lg font-bold grow min-w-0 text-primary py-2 break-words").mark("child-link")
            status_badge(row.status)
        if row.next_clock:
            ui.label(clock_line(row.next_clock)).classes("break-words")
        ui.label(place_line(row)).classes("text-sm text-gray-800 break-words")
        if row.out_of_area:
            distance = f", {row.distance_km:.0f} km away" if row.distance_km is not None else ""
            ui.label(f"Out of area: {row.placement_la or 'another authority'}{distance}").classes(
                "self-start text-sm font-bold rounded px-2 py-0.5 bg-purple-900 text-white break-words")
        label = "Continue visit draft" if has_draft else "Log a visit"
        ui.button(label, icon="edit_note", on_click=lambda: ui.navigate.to(f"/child/{row.child_id}/visit")).props(
            f'aria-label="{label} for {row.name}"').classes("w-full h-12 mt-1")


async def caseload_page() -> None:
    worker = current_worker()
    rows, drafts = await run.io_bound(_load, state.store(), worker)
    counts = Counter(row.status for row in rows)
    with frame("My caseload"):
        if rows:
            summary = ", ".join(f"{counts[s]} {STATUS_STYLE[s][0].lower()}" for s in STATUS_STYLE if counts[s])
            ui.label(f"{len(rows)} children: {summary}.").classes("text-base").mark("summary")
        search = ui.input("Search by name").props(
            'outlined clearable type=search for="caseload-search" autocomplete=off').classes("w-full").mark("search")
        shown_count = ui.label().classes("sr-only").props('aria-live="polite"')
        container = ui.column().classes("w-full gap-2")

        def show() -> None:
            container.clear()
            words = (search.value or "").strip().lower().split()
            shown = [r for r in rows if all(w in r.name.lower() for w in words)]
            shown_count.text = f"{len(shown)} shown"
            with container:
                if not shown:
                    ui.label("No children match that name." if words else "No children are allocated to you.")
                for row in shown:
                    child_card(row, row.child_id in drafts)

        search.on_value_change(show)
        show()


def register() -> None:
    ui.page("/", title="My caseload · Seen")(caseload_page)

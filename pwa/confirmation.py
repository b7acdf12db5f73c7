"""The confirmation a saved record gets (GOV.UK's confirmation pattern), on its own page or in place.

Shared by the confirmation pages (pwa/pages/recorded.py) and the forms that stay open after saving (wishes
and feelings, life story): a panel naming what was recorded, the facts as saved, and what is due next.
"""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import status_badge
from pwa.threads import io_bound
from storage.recorded import NextDue, Recorded, recorded

TASKS = {"visit": "Log a visit", "wishes_and_feelings": "Wishes and feelings", "life_story": "Life story"}
# The onward links after each kind of record: (words, path under the child).
ONWARD = {
    "visit": [("Log another visit", "visit")],
    "wishes_and_feelings": [("Record more wishes and feelings", "wishes")],
    "life_story": [("Open the life-story book", "life-story")],
}


def panel(title: str, line: str) -> None:
    """GOV.UK's confirmation panel: the outcome in large type on green, one line beneath it."""
    with ui.element("div").classes("w-full rounded bg-[#00703c] text-white text-center px-4 py-6").props(
            'data-panel="confirmation"'):
        ui.label(title).classes("text-3xl font-bold").props('role="heading" aria-level="2"')
        ui.label(line).classes("text-lg mt-2 break-words")


def facts_list(facts: list[tuple[str, str]]) -> None:
    """The facts as saved, as a summary list: what, then its value."""
    with ui.element("dl").classes("w-full").props('data-facts="saved"'):
        for what, value in facts:
            with ui.element("div").classes("flex no-wrap gap-2 border-b border-gray-300 py-2"):
                with ui.element("dt").classes("w-32 shrink-0 font-bold"):
                    ui.label(what)
                with ui.element("dd").classes("grow min-w-0 break-words"):
                    ui.label(value).props(f'data-fact="{what}"')


def due_card(due: NextDue | None) -> None:
    """The child's next due date and the rule behind it."""
    ui.label("What happens next").classes("text-xl font-bold mt-2").props('role="heading" aria-level="2"')
    if due is None:
        ui.label("No statutory timescale applies to this child at the moment.")
        return
    with ui.card().classes("w-full p-3 gap-1").props('data-next-due="1"'):
        with ui.row().classes("w-full items-center gap-2"):
            ui.label(f"{due.what}: {due.due:%-d %b %Y}").classes("text-lg font-bold").mark("next-due")
            status_badge(due.status)
        ui.label(f"Why: {due.rule}").classes("break-words").mark("next-due-rule")
        ui.label(due.source).classes("text-sm text-gray-800 break-words")


def link(text: str, target: str) -> None:
    ui.link(text, target).classes("text-primary text-lg underline")


def confirmation(done: Recorded, *, own_page: bool = True) -> None:
    """What was saved and what is due next. On its own page (after a visit) it offers the next thing to do;
    in place above a form that stays open (wishes and feelings, life story) it says the same in fewer links."""
    panel(done.title, f"for {done.child_name}")
    facts_list(done.facts)
    if done.late:
        ui.label("It was written up more than 2 working days after the visit, so it shows as late.").classes(
            "bg-orange-100 text-orange-950 rounded p-2")
    if done.kind == "visit":
        ui.label("It is waiting for your manager's sign-off.").classes("text-base")
    due_card(done.next_due)
    with ui.column().classes("gap-2 mt-2"):
        link(f"Back to {done.child_name}'s page", f"/child/{done.child_id}")
        if own_page:
            for words, path in ONWARD.get(done.kind, []):
                link(words, f"/child/{done.child_id}/{path}")
            link("My caseload", "/")


async def show_in_place(place: ui.column, child_id: str, kind: str, record_id: str) -> None:
    """The confirmation of a record just saved, in `place` above a form that stays open, scrolled into view."""
    done = await io_bound(recorded, state.store(), current_worker(), child_id, kind, record_id)
    place.clear()
    with place:
        confirmation(done, own_page=False)
    place.classes(remove="hidden")
    ui.run_javascript(f"document.getElementById('c{place.id}')?.scrollIntoView({{block: 'start'}})")

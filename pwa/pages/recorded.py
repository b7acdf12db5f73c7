"""Confirmations: what was saved, and what happens next (GOV.UK's confirmation pattern).

A worker who submits a visit, saves wishes and feelings or adds a life-story entry lands here, not back at the
top of the child's page with a message that vanished with the page change: a panel names what was recorded,
the facts as saved are listed, and the child's next due date is shown with the rule that made it. A manager
who signs a visit off is told what they signed off and which visit is next in their queue.
"""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.confirmation import TASKS, confirmation, facts_list, link, panel
from pwa.layout import frame, not_found
from pwa.threads import io_bound
from storage.recorded import recorded, signed_off
from storage.store import NotAllowed


async def recorded_page(child_id: str, kind: str, record_id: str) -> None:
    worker = current_worker()
    try:
        done = await io_bound(recorded, state.store(), worker, child_id, kind, record_id)
    except NotAllowed:
        not_found()
        return
    # The header keeps the task's name; the panel says how it ended (one heading per name on the page).
    with frame(TASKS.get(kind, "Saved"), back=f"/child/{child_id}"):
        confirmation(done)


async def signed_off_page(visit_id: str) -> None:
    manager = current_worker()
    try:
        done = await io_bound(signed_off, state.store(), manager, visit_id)
    except NotAllowed:
        with frame("Not found", back="/signoff"):
            ui.label("Not found: that visit is not in a team you manage, or is not signed off.").props('role="alert"')
        return
    with frame("Visit sign-off", back="/signoff"):
        panel("Visit signed off", f"for {done.child_name}")
        facts_list(done.facts)
        ui.label("Signed-off records cannot be changed.")
        ui.label("Next in your queue").classes("text-xl font-bold mt-2").props('role="heading" aria-level="2"')
        if done.next_visit_id:
            ui.label(f"{done.waiting} {'visit is' if done.waiting == 1 else 'visits are'} waiting for sign-off.")
            link(f"Read next: {done.next_words}", f"/signoff/{done.next_visit_id}")
        else:
            ui.label(done.next_words).mark("queue-empty")
        with ui.column().classes("gap-2 mt-2"):
            link("Back to the sign-off queue", "/signoff")
            link(f"{done.child_name}'s page", f"/child/{done.child_id}")


def register() -> None:
    ui.page("/child/{child_id}/recorded/{kind}/{record_id}", title="Saved · Seen")(recorded_page)
    ui.page("/signoff/{visit_id}/signed-off", title="Visit signed off · Seen")(signed_off_page)

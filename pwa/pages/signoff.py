"""Sign-off: the visits a manager's team submitted, read one by one, signed off or returned with a reason.

Managers only, and only their own team's visits; the store refuses (and audits) anything else. A visit
signed off is final: the page shows it read-only and storage refuses any change to it.
"""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.error_summary import error_summary, show_problems
from pwa.form_key import FormKey
from pwa.layout import frame, when
from pwa.style import child_words
from pwa.threads import io_bound
from storage import oversight
from storage.child_voice import statement_words, statements_on
from storage.models import VISIT_LOCATIONS
from storage.recorded import seen_words
from storage.signs_of_safety import goal_words
from storage.store import NotAllowed
from storage.timescales.calendar import LONDON


async def queue_page() -> None:
    worker = current_worker()
    try:
        items = await io_bound(oversight.signoff_queue, state.store(), worker)
    except NotAllowed as refusal:
        with frame("Sign-off queue"):
            ui.label(str(refusal)).props('role="alert"')
        return
    with frame("Sign-off queue"):
        if not items:
            ui.label("Nothing is waiting for sign-off.")
        else:
            ui.label(f"{len(items)} {'visit is' if len(items) == 1 else 'visits are'} waiting for sign-off, "
                     "oldest first.")
        for item in items:
            with ui.card().classes("w-full p-3 gap-1").props(f'data-visit="{item.visit_id}"'):
                ui.link(f"{item.child_name}: visit on {when(item.visited_at)}", f"/signoff/{item.visit_id}").classes(
                    "text-lg font-bold text-primary")
                ui.label(f"By {item.worker_name} · submitted {when(item.submitted_at)}").classes("text-sm")
                with ui.row().classes("gap-1"):
                    ui.label(seen_words(item.seen, item.seen_alone)).classes("text-sm")
                    if item.written_up_late:
                        ui.label("Written up late").classes(
                            "rounded px-2 py-0.5 text-sm bg-orange-100 text-orange-950")


def section(title: str, text: str) -> None:
    if text:
        ui.label(title).classes("font-bold mt-2")
        ui.label(text).classes("whitespace-pre-wrap")


async def visit_page(visit_id: str) -> None:
    worker = current_worker()
    store = state.store()
    try:
        review = await io_bound(oversight.visit_for_review, store, worker, visit_id)
        statements = await io_bound(statements_on, store, worker, review.visit.child_id,
                                    review.visit.visited_at.astimezone(LONDON).date())
    except NotAllowed:
        with frame("Visit", back="/signoff"):
            ui.label("Not found: that visit is not in a team you manage, or does not exist.").props('role="alert"')
        return
    visit = review.visit
    with frame("Visit sign-off", back="/signoff"):
        with ui.card().classes("w-full p-3 gap-1"):
            ui.link(review.child_name, f"/child/{visit.child_id}").classes("text-xl font-bold text-primary")
            ui.label(f"Visited {when(visit.visited_at)} at {VISIT_LOCATIONS.get(visit.location, visit.location)}"
                     + (f" ({visit.location_detail})" if visit.location_detail else ""))
            ui.label(f"By {review.worker_name}; written up {when(visit.written_up_at)}"
                     + (" (late)" if review.written_up_late else ""))
            ui.label(seen_words(visit.seen, visit.seen_alone, visit.not_alone_reason)).classes("font-bold")
            if visit.bedroom_seen is not None:
                ui.label("Bedroom seen" if visit.bedroom_seen else "Bedroom not seen")
            section("Present", visit.present)
            section("Observations (what was seen and heard)", visit.observations)
            section("Analysis (the worker's view)", visit.analysis)
            if visit.child_words:
                ui.label("The child's wishes and feelings").classes("font-bold mt-2")
                child_words(visit.child_words, review.child_name.split()[0] if review.child_name else "")
            section("Why the child's words were not recorded", visit.child_words_not_recorded_reason)
            for statement in statements:  # what the child said themselves that day, in child mode
                ui.label("The child's own statement (child mode)").classes("font-bold mt-2")
                child_words(statement_words(statement))
            section("Worries", visit.worries)
            section("What is working well", visit.working_well)
            section("What needs to happen", visit.needs_to_happen)
            if visit.safety_scale:
                section("Safety scale (0-10)", "; ".join(f"{s.who}: {s.score}" for s in visit.safety_scale))
            for n, goal in enumerate(visit.safety_goals, 1):
                section(f"Worry and safety goal {n}", goal_words(goal))
            if visit.actions:
                section("Actions arising", "\n".join(f"• {a}" for a in visit.actions))
            section("Returned to the worker because", visit.return_reason)

        if not review.awaiting_sign_off:
            with ui.card().classes("w-full p-3 gap-1"):
                if visit.status == "signed_off":
                    ui.label(f"Signed off by {review.signed_off_by_name} on {when(visit.signed_off_at)}").classes(
                        "font-bold")
                    ui.label("Signed-off records cannot be changed.")
                else:
                    ui.label("This visit is not waiting for sign-off.").classes("font-bold")
                section("Management oversight", visit.manager_note)
            return

        key = FormKey()  # made when the form is opened: a second tap of "Sign off" changes nothing
        message = error_summary()
        note = ui.textarea("Management oversight note",
                           placeholder="Your analysis and direction: what you agree with, what must happen next"
                           ).props("outlined autogrow").classes("w-full")

        async def decide(action: str) -> None:
            try:
                if action == "sign_off":
                    await io_bound(oversight.sign_off, store, worker, visit_id, note.value or "", key.value)
                else:
                    await io_bound(oversight.return_to_worker, store, worker, visit_id, reason.value or "",
                                       note.value or "")
                    ui.notify("Visit returned to the worker.")
            except (oversight.OversightError, NotAllowed) as e:
                show_problems(message, {action: str(e)}, fields={"sign_off": note, "return": reason})
                return
            # A sign-off lands on its confirmation: what was signed off, and the next visit in the queue.
            ui.navigate.to(f"/signoff/{visit_id}/signed-off" if action == "sign_off" else "/signoff")

        ui.button("Sign off", icon="verified", on_click=lambda: decide("sign_off")).classes("w-full h-12")
        with ui.expansion("Return to the worker instead", icon="undo").classes("w-full"):
            reason = ui.textarea("Why it is being returned",
                                 placeholder="What the worker needs to add or put right").props(
                "outlined autogrow").classes("w-full")
            ui.button("Return to worker", on_click=lambda: decide("return")).props("outline").classes(
                "w-full h-12")


def register() -> None:
    ui.page("/signoff", title="Sign-off · Seen")(queue_page)
    ui.page("/signoff/{visit_id}", title="Visit sign-off · Seen")(visit_page)

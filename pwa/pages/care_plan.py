"""Care plan: the child's plans and their actions, who owns each, when it is due and how it turned out.

Overdue open actions come first and stand out in red with the word "Overdue" (never colour alone).
Each change names the fields it touched, so sync merges a plan's actions field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.date_confirm import offer_confirmation
from pwa.error_summary import error_summary, show_problems
from pwa.form_fields import field_input, screen_fields
from pwa.form_key import FormKey
from pwa.layout import NOT_FOUND, frame
from pwa.threads import io_bound
from storage.care_plans import (
    ACTION_STATUS_WORDS,
    ActionView,
    PlanView,
    add_action,
    add_plan,
    blank_plan_form,
    care_plans_for_child,
    complete_action,
    set_action_status,
)
from storage.child_forms import FormInvalid
from storage.forms.care_plan_action import CARE_PLAN_ACTION
from storage.models import PLAN_KINDS
from storage.record_dates import CONFIRM_FIELD
from storage.store import NotAllowed
from storage.submissions import KEY_FIELD
from storage.timescales.calendar import today_in_england

STATUS_CLASSES = {"open": "bg-blue-100 text-blue-900", "in_progress": "bg-yellow-200 text-black",
                  "done": "bg-green-800 text-white", "cancelled": "bg-gray-200 text-gray-900"}


async def care_plan_page(child_id: str) -> None:
    worker = current_worker()
    store = state.store()
    back = f"/child/{child_id}"
    try:
        heading, plans = await io_bound(care_plans_for_child, store, worker, child_id)
    except NotAllowed:
        with frame("Care plan", back=back):
            ui.label(NOT_FOUND).props('role="alert"')
        return

    with frame("Care plan", back=back):
        ui.label(f"{heading.name}'s plans").classes("text-xl font-bold").props('role="heading" aria-level="2"')
        summary = ui.label().classes("font-bold").props('aria-live="polite"')
        body = ui.column().classes("w-full gap-3")
        with ui.expansion("Add a plan", icon="add").classes("w-full border rounded").mark("add-plan"):
            plan_problems = error_summary()
            blank = blank_plan_form()
            kind = ui.select(PLAN_KINDS, label="Kind of plan").props("outlined").classes("w-full").mark("plan-kind")
            start = ui.input("Start date", value=blank["start"]).props(
                f'type=date outlined stack-label max={today_in_england().isoformat()}').classes("w-full").mark(
                "plan-start")
            plan_summary = ui.textarea("What the plan is for").props("outlined autogrow").classes("w-full").mark(
                "plan-summary")
            plan_button = ui.button("Add the plan", icon="add").classes("w-full h-12").mark("plan-save")

    async def reload() -> None:
        _, fresh = await io_bound(care_plans_for_child, store, worker, child_id)
        show(fresh)

    async def attempt(work: Callable[[], Any], place: ui.column | None, done: str,
                      fields: Mapping[str, ui.element] | None = None) -> bool:
        """Runs one write; shows what to fix (or says the record is gone), then redraws the plans."""
        try:
            await io_bound(work)
        except FormInvalid as e:
            if place is not None:
                show_problems(place, e.problems, fields=fields)
            else:
                ui.notify(str(e), type="warning")
            return False
        except NotAllowed as e:
            ui.notify(str(e), type="warning")
            return False
        ui.notify(done, type="positive")
        await reload()
        return True

    async def change_status(action: ActionView, status: str) -> None:
        if status == action.status:
            return
        if status == "done":
            await complete(action)
            return
        if not await attempt(lambda: set_action_status(store, worker, child_id, action.id, status), None,
                             f"Status changed to {ACTION_STATUS_WORDS[status].lower()}"):
            await reload()  # the select goes back to the status that is really stored

    async def complete(action: ActionView) -> None:
        with ui.dialog().props('aria-labelledby="complete-title"') as dialog, ui.card().classes(
                "w-full max-w-md gap-2"):
            ui.label("Mark the action done").classes("text-lg font-bold").props(
                'id="complete-title" role="heading" aria-level="2"')
            ui.label(action.description)
            problems = error_summary()
            outcome = ui.textarea("Outcome: what happened").props("outlined autogrow").classes("w-full").mark(
                "outcome")

            async def finish() -> None:
                if await attempt(lambda: complete_action(store, worker, child_id, action.id, outcome.value or ""),
                                 problems, "Action marked done", {"outcome": outcome}):
                    dialog.close()

            with ui.row().classes("w-full gap-2 no-wrap"):
                ui.button("Mark done", icon="check", on_click=finish).props("no-caps").classes(
                    "grow h-12 text-base").mark("outcome-save")
                ui.button("Cancel", on_click=dialog.close).props("outline no-caps").classes("h-12 text-base")
        dialog.on("hide", dialog.delete)
        dialog.open()

    def action_card(action: ActionView) -> None:
        border = "border-l-8 border-red-800 bg-red-50" if action.overdue else "border-l-8 border-gray-300"
        with ui.card().classes(f"w-full p-3 gap-1 {border}").props(f'data-action="{action.id}"'):
            with ui.row().classes("w-full items-start gap-2 no-wrap"):
                ui.label(action.description).classes("font-bold grow")
                if action.overdue:
                    ui.label("Overdue").classes("bg-red-800 text-white rounded px-2 text-sm font-bold")
                ui.label(action.status_words).classes(
                    f"{STATUS_CLASSES.get(action.status, '')} rounded px-2 text-sm whitespace-nowrap")
            ui.label(f"Owner: {action.owner or 'not set'}").classes("text-sm")
            due = f"Due {action.due:%-d %b %Y}" if action.due else "No due date"
            ui.label(due).classes("text-sm" + (" font-bold text-red-900" if action.overdue else ""))
            if action.status == "done":
                done_on = f" on {action.completed_on:%-d %b %Y}" if action.completed_on else ""
                ui.label(f"Done{done_on}. Outcome: {action.outcome or 'not recorded'}").classes("text-sm")
            with ui.row().classes("w-full items-center gap-2 no-wrap"):
                options = {k: v for k, v in ACTION_STATUS_WORDS.items() if k != "done" or action.status == "done"}
                ui.select(options, value=action.status, label="Status",
                          on_change=lambda e, a=action: change_status(a, e.value)).props(
                    "outlined dense").classes("grow").mark(f"status-{action.id}")
                if action.status != "done":
                    ui.button("Complete", on_click=lambda a=action: complete(a)).props("no-caps").classes(
                        "h-10 shrink-0").mark(f"complete-{action.id}")

    def add_action_form(plan: PlanView) -> None:
        with ui.expansion("Add an action", icon="add").classes("w-full").mark(f"add-action-{plan.id}"):
            # Made when the form is drawn (again after each action added): the action is stored once a key.
            key = FormKey()
            problems = error_summary()
            # Its fields as the action's definition says (storage/forms/care_plan_action.py).
            inputs = {f.name: field_input(f, mark=f"action-{f.name}-{plan.id}")
                      for f in screen_fields(CARE_PLAN_ACTION)}
            description, owner, due = inputs["description"], inputs["owner"], inputs["due"]

            async def save(p: PlanView = plan, confirmed: str = "") -> None:
                fields = {"plan_id": p.id, "description": description.value or "", "owner": owner.value or "",
                          "due": due.value or "", CONFIRM_FIELD: confirmed, KEY_FIELD: key.value}

                def add() -> Any:
                    try:
                        return add_action(store, worker, child_id, fields)
                    except FormInvalid as e:
                        asked.update(e.problems)
                        raise

                asked: dict[str, str] = {}
                if not await attempt(add, problems, "Action added", inputs):
                    async def confirm(day: str, p: PlanView = p) -> None:
                        await save(p, day)

                    offer_confirmation(problems, asked, fields["due"], "the action is due on", confirm)

            ui.button("Add the action", icon="add", on_click=save).classes("w-full h-12").mark(
                f"action-save-{plan.id}")

    def show(items: list[PlanView]) -> None:
        overdue = sum(a.overdue for p in items for a in p.actions)
        summary.text = (f"{overdue} overdue action{'s' if overdue != 1 else ''}" if overdue
                        else "No overdue actions.")
        summary.classes(replace="font-bold " + ("text-red-900" if overdue else "text-green-900"))
        body.clear()
        with body:
            if not items:
                ui.label("No plans yet. Add the child's plan below.")
            for plan in items:
                with ui.card().classes("w-full p-3 gap-2 bg-gray-50").props(f'data-plan="{plan.id}"'):
                    ui.label(plan.kind_words).classes("text-lg font-bold text-primary").props(
                        'role="heading" aria-level="3"')
                    ended = f", ended {plan.ended:%-d %b %Y}" if plan.ended else ""
                    ui.label(f"Since {plan.start:%-d %b %Y}{ended}").classes("text-sm")
                    if plan.summary:
                        ui.label(plan.summary).classes("whitespace-pre-wrap")
                    if not plan.actions:
                        ui.label("No actions yet.")
                    for action in plan.actions:
                        action_card(action)
                    add_action_form(plan)

    async def save_plan() -> None:
        plan_problems.clear()
        fields = {"kind": kind.value or "", "start": start.value or "", "summary": plan_summary.value or ""}
        if await attempt(lambda: add_plan(store, worker, child_id, fields), plan_problems, "Plan added",
                         {"kind": kind, "start": start, "summary": plan_summary}):
            kind.value, plan_summary.value = None, ""

    plan_button.on_click(save_plan)
    show(plans)


def register() -> None:
    ui.page("/child/{child_id}/care-plan", title="Care plan · Seen")(care_plan_page)

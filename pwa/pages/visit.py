"""Log a visit: every statutory field, one thumb, and a draft that saves itself as the worker types.

The common path is: open (dated now, at the placement, child seen), answer "seen alone" (and the bedroom
for a child in care), write observations, analysis and the child's words, submit.

The draft is saved into the database (sealed) on every choice, when a text field loses focus, and
every few seconds while typing; a reload, a closed tab or a restarted server restores it.

Each input carries `data-field="<name>"` (and its native control the id `visit-<name>`), the names of
storage.visits' form fields, so the offline page's script can read the form as it stands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from nicegui import background_tasks, ui

from pwa import state
from pwa.auth import current_worker
from pwa.date_confirm import offer_confirmation
from pwa.error_summary import error_summary, show_problems
from pwa.form_draft import FormDraft, save_open
from pwa.form_key import FormKey
from pwa.layout import frame, not_found
from pwa.threads import io_bound
from storage.drafts import DRAFT_KIND
from storage.models import NOT_ALONE_REASONS, VISIT_LOCATIONS, Worker
from storage.record_dates import CONFIRM_FIELD
from storage.store import NotAllowed
from storage.submissions import KEY_FIELD
from storage.timescales.calendar import LONDON, today_in_england
from storage.visits import VisitFormStart, VisitInvalid, start_visit_form, submit_visit

YES_NO = {"yes": "Yes", "no": "No"}


class VisitForm:
    """The form's state, its inputs and the draft it keeps saved."""

    def __init__(self, worker: Worker, child_id: str, start: VisitFormStart) -> None:
        self.worker = worker
        self.child_id = child_id
        self.category = start.category
        self.fields: dict[str, Any] = start.fields
        # Saved as pwa/form_draft.py saves every form: one lock per draft shared by every tab, and a reload
        # asks the page it replaces (still held by the server for a while) to save first.
        self.draft = FormDraft(worker, child_id, DRAFT_KIND, self.snapshot)
        self.errors: dict[str, ui.label] = {}
        self.inputs: dict[str, ui.element] = {}  # what each problem in the summary links to
        self.summary: ui.column | None = None

    # ------------------------------------------------------------ saving

    def changed(self, name: str, value: Any, *, now: bool = False) -> None:
        self.fields[name] = value
        self.dirty = True
        if now:
            background_tasks.create(self.save(), name="visit-draft-save")

    @property
    def dirty(self) -> bool:
        return self.draft.dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        self.draft.dirty = value

    def snapshot(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.fields.items()}

    async def save(self) -> None:
        """Saves the draft if anything changed since the last save ("saved" means in the database)."""
        await self.draft.save()

    # ------------------------------------------------------------ inputs

    def error_slot(self, name: str) -> None:
        self.errors[name] = ui.label().classes("text-red-800 font-bold hidden").props(
            f'data-error="{name}"')
        self.inputs.setdefault(name, self.errors[name])  # a row list's problem: its message, by the rows

    def text(self, name: str, label: str, *, hint: str = "", area: bool = False, kind: str = "text") -> ui.input:
        maker = ui.textarea if area else ui.input
        element = maker(label, value=self.fields.get(name) or "").props(
            f'outlined stack-label for="visit-{name}" data-field="{name}"'
            + (f' type="{kind}"' if kind != "text" else "") + (" autogrow" if area else "")).classes("w-full")
        if hint:
            element.props(f'hint="{hint}"')
        element.on_value_change(lambda e: self.changed(name, e.value or ""))
        element.on("blur", self.save)
        self.inputs[name] = element
        self.error_slot(name)
        return element

    def choice(self, name: str, label: str, options: dict[str, str], *, on_change: Callable[[], None] | None = None,
               column: bool = False) -> ui.radio:
        ui.label(label).classes("font-bold").props(f'id="label-{name}"')
        value = self.fields.get(name) or None
        element = ui.radio(options, value=value if value in options else None).props(
            f'aria-labelledby="label-{name}" data-field="{name}" size="lg"' + ("" if column else " inline")
        ).classes("text-base").mark(name)

        def picked(e: Any) -> None:
            self.changed(name, e.value or "", now=True)
            if on_change:
                on_change()

        element.on_value_change(picked)
        self.inputs[name] = element
        self.error_slot(name)
        return element

    # ------------------------------------------------------------ problems

    def show_problems(self, problems: dict[str, str]) -> None:
        for name, label in self.errors.items():
            label.text = problems.get(name, "")
            label.classes(remove="hidden") if name in problems else label.classes(add="hidden")
        assert self.summary is not None
        self.summary.clear()
        if problems:
            show_problems(self.summary, problems, "This visit cannot be submitted yet.", fields=self.inputs)


def scale_rows(form: VisitForm) -> None:
    """Signs of Safety scale: one row per person asked, each with their number from 0 to 10."""

    @ui.refreshable
    def rows() -> None:
        scale: list[dict[str, Any]] = form.fields.setdefault("safety_scale", [])
        for index, row in enumerate(scale):
            with ui.row().classes("w-full items-start no-wrap gap-2").props('data-field="safety_scale_row"'):
                who = ui.input("Who was asked", value=row.get("who") or "").props(
                    f'outlined dense for="visit-scale-who-{index}"').classes("grow min-w-0")
                score = ui.number("Score 0–10", value=row.get("score"), min=0, max=10, step=1, precision=0).props(
                    f'outlined dense inputmode=numeric for="visit-scale-score-{index}"').classes("w-28 shrink-0")

                def set_who(e: Any, r: dict[str, Any] = row) -> None:
                    r["who"] = e.value or ""
                    form.dirty = True

                def set_score(e: Any, r: dict[str, Any] = row) -> None:
                    r["score"] = None if e.value is None else int(e.value)
                    form.dirty = True

                who.on_value_change(set_who)
                score.on_value_change(set_score)
                ui.button(icon="delete", on_click=lambda i=index: remove(i)).props(
                    f'flat round aria-label="Remove score {index + 1}"').classes("mt-1")

    def add() -> None:
        form.fields.setdefault("safety_scale", []).append({"who": "", "score": None})
        form.changed("safety_scale", form.fields["safety_scale"], now=True)
        rows.refresh()

    def remove(index: int) -> None:
        del form.fields["safety_scale"][index]
        form.changed("safety_scale", form.fields["safety_scale"], now=True)
        rows.refresh()

    rows()
    ui.button("Add a person's score", icon="add", on_click=add).props("outline").classes("w-full h-12").mark(
        "add-score")
    form.error_slot("safety_scale")


def action_rows(form: VisitForm) -> None:
    """Actions arising: each becomes an action on the child's care plan when the visit is submitted."""

    @ui.refreshable
    def rows() -> None:
        actions: list[dict[str, Any]] = form.fields.setdefault("actions", [])
        for index, row in enumerate(actions):
            with ui.card().classes("w-full p-2 gap-1").props('data-field="action_row"'):
                description = ui.textarea(f"Action {index + 1}", value=row.get("description") or "").props(
                    f'outlined dense autogrow for="visit-action-{index}"').classes("w-full")
                with ui.row().classes("w-full no-wrap gap-2"):
                    owner = ui.input("Who will do it", value=row.get("owner") or "").props(
                        f'outlined dense for="visit-action-owner-{index}"').classes("grow min-w-0")
                    due = ui.input("By", value=row.get("due") or "").props(
                        f'outlined dense stack-label type=date for="visit-action-due-{index}"').classes(
                        "w-40 shrink-0")
                for element, key in ((description, "description"), (owner, "owner"), (due, "due")):
                    def set_value(e: Any, r: dict[str, Any] = row, k: str = key) -> None:
                        r[k] = e.value or ""
                        form.dirty = True

                    element.on_value_change(set_value)
                    element.on("blur", form.save)
                ui.button("Remove this action", icon="delete", on_click=lambda i=index: remove(i)).props(
                    "flat dense no-caps").classes("self-end")

    def add() -> None:
        form.fields.setdefault("actions", []).append({"description": "", "owner": "", "due": ""})
        form.changed("actions", form.fields["actions"], now=True)
        rows.refresh()

    def remove(index: int) -> None:
        del form.fields["actions"][index]
        form.changed("actions", form.fields["actions"], now=True)
        rows.refresh()

    rows()
    ui.button("Add an action", icon="add", on_click=add).props("outline").classes("w-full h-12").mark("add-action")
    form.error_slot("actions")


def date_limits(born: date | None) -> str:
    """A date picker's bounds: today in England at the latest, the child's date of birth at the earliest."""
    return f'max={today_in_england().isoformat()}' + (f' min={born.isoformat()}' if born else "")


def section(title: str) -> None:
    ui.label(title).classes("text-lg font-bold mt-3").props('role="heading" aria-level="2"')


def build_form(form: VisitForm, start: VisitFormStart) -> None:
    child_id = form.child_id
    # The key the form was opened with (kept in its draft): the visit is stored once, however often it is sent.
    form.fields[KEY_FIELD] = FormKey(str(form.fields.get(KEY_FIELD) or "")).value
    correcting = bool(form.fields.get("supersedes"))
    ui.label(f"{'Correcting a visit to' if correcting else 'Visit to'} {start.child_name}").classes(
        "text-xl font-bold").props('role="heading" aria-level="2"')
    if start.restored_at is not None:
        ui.label(f"Your unfinished draft from {start.restored_at.astimezone(LONDON):%-d %b %Y at %H:%M} "
                 "has been restored.").classes("bg-blue-50 text-blue-950 rounded p-2").mark("restored")
    if start.problem:
        ui.label(start.problem).classes("bg-red-50 text-red-900 rounded p-2")
    if correcting:
        ui.label("This new record will replace the visit you are correcting; the original is kept.").classes(
            "text-sm")
    form.summary = error_summary()

    section("When and where")
    with ui.row().classes("w-full no-wrap gap-2"):
        with ui.column().classes("grow min-w-0 gap-0"):
            # The picker offers no future date, and none before the child was born.
            form.text("visit_date", "Date", kind="date").props(date_limits(start.born))
        with ui.column().classes("w-32 shrink-0 gap-0"):
            form.text("visit_time", "Time", kind="time")
    form.choice("location", "Where", VISIT_LOCATIONS, column=True)
    form.text("location_detail", "Where exactly (optional)")

    section("Seeing the child")

    def show_alone() -> None:
        alone_box.set_visibility(form.fields.get("seen") == "yes")
        reason_box.set_visibility(form.fields.get("seen") == "yes" and form.fields.get("seen_alone") == "no")

    form.choice("seen", "Did you see the child?", YES_NO, on_change=show_alone)
    alone_box = ui.column().classes("w-full gap-1")
    reason_box = ui.column().classes("w-full gap-1")
    with alone_box:
        form.choice("seen_alone", "Did you see the child alone?", YES_NO, on_change=show_alone)
    with reason_box:
        form.choice("not_alone_reason", "Why not alone? (reg 29)", NOT_ALONE_REASONS, column=True)
    show_alone()
    if form.category == "cic":
        form.choice("bedroom_seen", "Did you see the child's bedroom?", YES_NO)
    form.text("present", "Who else was there")

    section("What you saw and think")
    form.text("observations", "Observations (fact)", area=True,
              hint="What you saw and heard: facts only.")
    form.text("analysis", "Analysis (your professional opinion)", area=True,
              hint="What you think it means, and why.")

    section("The child's wishes and feelings")
    form.text("child_words", "In the child's own words", area=True,
              hint="Write what the child said, as they said it.").classes("seen-child-words-input")
    form.text("child_words_not_recorded_reason", "If not recorded, why not")

    section("Signs of Safety")
    form.text("worries", "What are we worried about?", area=True)
    form.text("working_well", "What is working well?", area=True)
    form.text("needs_to_happen", "What needs to happen?", area=True)
    ui.label("Safety scale: 0 means the child is not safe, 10 means safe enough to close.").classes("text-sm")
    scale_rows(form)

    section("Actions arising")
    ui.label("Each action is added to the child's care plan when you submit.").classes("text-sm")
    action_rows(form)

    async def submit() -> None:
        fields = form.snapshot()  # as it is at the tap: a second tap sends the same form, with the same key
        await form.save()
        try:
            async with form.draft.lock:  # no autosave may land after it and bring back the draft it deleted
                visit = await io_bound(submit_visit, state.store(), form.worker, child_id, fields)
                form.dirty = False
        except VisitInvalid as e:
            form.show_problems(e.problems)
            assert form.summary is not None

            async def confirm(day: str) -> None:
                form.fields[CONFIRM_FIELD] = day
                await submit()

            offer_confirmation(form.summary, e.problems, str(form.fields.get("visit_date") or ""), "the visit was on", confirm)
            return
        ui.navigate.to(f"/child/{child_id}/recorded/visit/{visit.id}")

    async def discard() -> None:
        with ui.dialog() as dialog, ui.card():
            question = ui.label("Discard this draft? What you have typed will be lost.")
            dialog.props(f'aria-labelledby="c{question.id}"')
            with ui.row():
                ui.button("Keep it", on_click=lambda: dialog.submit(False)).props("flat")
                ui.button("Discard", on_click=lambda: dialog.submit(True)).props("color=negative")
        if await dialog:
            await form.draft.discard(lambda: None)  # the page is left at once: nothing on it to clear
            ui.navigate.to(f"/child/{child_id}")

    with ui.column().classes("w-full gap-2 mt-4"):
        ui.button("Submit visit", icon="check", on_click=submit).classes("w-full h-14 text-lg").mark("submit")
        form.draft.status = ui.label("Your draft saves itself as you type.").classes("text-sm text-gray-800").props(
            'aria-live="polite"').mark("saved")
        ui.button("Discard draft", icon="delete", on_click=discard).props("flat no-caps color=negative").classes(
            "self-start")
    form.draft.keep()


async def visit_page(child_id: str, supersedes: str = "") -> None:
    worker = current_worker()
    await save_open(worker, child_id, DRAFT_KIND)
    try:
        start = await io_bound(start_visit_form, state.store(), worker, child_id, supersedes)
    except NotAllowed:
        not_found()
        return
    form = VisitForm(worker, child_id, start)
    with frame("Correct a visit" if start.fields.get("supersedes") else "Log a visit", back=f"/child/{child_id}"):
        build_form(form, start)


def register() -> None:
    ui.page("/child/{child_id}/visit", title="Log a visit · Seen")(visit_page)

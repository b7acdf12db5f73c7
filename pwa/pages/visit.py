"""Log a visit: every statutory field, one thumb, and a draft that saves itself as the worker types.

The common path is: open (dated now, at the placement, child seen), answer "seen alone" (and the bedroom
for a child in care), write observations, analysis and the child's words, submit.

The draft is saved into the database (sealed) on every choice, when a text field loses focus, and
every few seconds while typing; a reload, a closed tab or a restarted server restores it.

The fields are drawn from the visit's one definition (storage/forms/visit.py, by pwa/form_fields.py), the
same the checks and the offline page use. Each input carries `data-field="<name>"` (and its native control
the id `visit-<name>`), so the offline page's script can read the form as it stands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from nicegui import background_tasks, ui
from nicegui.elements.mixins.value_element import ValueElement

from pwa import state
from pwa.auth import current_worker
from pwa.date_confirm import offer_confirmation
from pwa.error_summary import error_summary, show_problems
from pwa.form_draft import FormDraft, save_open
from pwa.form_fields import field_input, section
from pwa.form_key import FormKey
from pwa.layout import frame, not_found
from pwa.threads import io_bound
from storage.drafts import DRAFT_KIND
from storage.forms import Field
from storage.forms.visit import VISIT
from storage.models import Worker
from storage.record_dates import CONFIRM_FIELD
from storage.store import NotAllowed
from storage.submissions import KEY_FIELD
from storage.timescales.calendar import LONDON
from storage.visits import VisitFormStart, VisitInvalid, start_visit_form, submit_visit


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
        self.asked_boxes: list[tuple[Field, ui.column]] = []

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

    def field(self, f: Field, born: date | None) -> ValueElement:
        """The field's input (pwa/form_fields.py), kept in the form as it changes: a choice saves at once and
        shows or hides the fields that hang on it, words save when the field loses focus."""
        element = field_input(f, self.fields.get(f.name), dom_prefix="visit", born=born)
        if f.kind in ("choice", "yesno"):
            def picked(e: Any) -> None:
                self.changed(f.name, e.value or "", now=True)
                self.show_asked()

            element.on_value_change(picked)
        else:
            element.on_value_change(lambda e: self.changed(f.name, e.value or ""))
            element.on("blur", self.save)
        self.inputs[f.name] = element
        self.error_slot(f.name)
        return element

    def show_asked(self) -> None:
        """Shows each field asked only after another answer ("If not alone, why not") when it is asked."""
        for f, box in self.asked_boxes:
            box.set_visibility(VISIT.asked(f, self.fields, self.category))

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
        who_label, score_label = (c.label for c in VISIT.field("safety_scale").columns)
        for index, row in enumerate(scale):
            with ui.row().classes("w-full items-start no-wrap gap-2").props('data-field="safety_scale_row"'):
                who = ui.input(who_label, value=row.get("who") or "").props(
                    f'outlined dense for="visit-scale-who-{index}"').classes("grow min-w-0")
                score = ui.number(score_label, value=row.get("score"), min=0, max=10, step=1, precision=0).props(
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


def goal_rows(form: VisitForm) -> None:
    """Worries and safety goals: each danger statement with its safety goal, scored 0-10 by each person asked.
    A new visit opens with the child's latest pairs (storage/visits.py), their scores blank to be given again."""
    columns = VISIT.field("safety_goals").columns
    scorers = [c for c in columns if c.kind == "number"]
    danger_column, goal_column = (c for c in columns if c.name in ("danger", "goal"))

    @ui.refreshable
    def rows() -> None:
        goals: list[dict[str, Any]] = form.fields.setdefault("safety_goals", [])
        for index, row in enumerate(goals):
            n = index + 1
            with ui.card().classes("w-full p-2 gap-1").props('data-field="safety_goal_row"'):
                ui.label(f"Worry and safety goal {n}").classes("font-bold").props('role="heading" aria-level="3"')
                # The pair's id, carried from visit to visit: not typed, read with the row if the form is handed
                # to the offline page (pwa/static/seen-page.js).
                kept = ui.element("span").classes("hidden")
                kept.props["data-col"] = "pair_id"
                kept.props["data-value"] = str(row.get("pair_id") or "")
                danger = ui.textarea(danger_column.label, value=row.get("danger") or "").props(
                    f'outlined dense autogrow for="visit-goal-danger-{index}"').classes("w-full").mark(
                    f"goal-danger-{index}")
                goal = ui.textarea(goal_column.label, value=row.get("goal") or "").props(
                    f'outlined dense autogrow for="visit-goal-goal-{index}"').classes("w-full").mark(
                    f"goal-goal-{index}")
                for element, key in ((danger, "danger"), (goal, "goal")):
                    def set_words(e: Any, r: dict[str, Any] = row, k: str = key) -> None:
                        r[k] = e.value or ""
                        form.dirty = True

                    element.on_value_change(set_words)
                    element.on("blur", form.save)
                with ui.grid(columns=2).classes("w-full gap-2"):
                    for c in scorers:
                        score = ui.number(c.label, value=row.get(c.name), min=c.low, max=c.high, step=1,
                                          precision=0).props(
                            f'outlined dense inputmode=numeric for="visit-goal-{c.name}-{index}"').classes(
                            "min-w-0").mark(f"goal-{c.name}-{index}")

                        def set_score(e: Any, r: dict[str, Any] = row, k: str = c.name) -> None:
                            r[k] = None if e.value is None else int(e.value)
                            form.dirty = True

                        score.on_value_change(set_score)
                        score.on("blur", form.save)
                ui.button("Remove this worry and goal", icon="delete", on_click=lambda i=index: remove(i)).props(
                    f'flat dense no-caps aria-label="Remove worry and safety goal {n}"').classes("self-end")

    def add() -> None:
        form.fields.setdefault("safety_goals", []).append({"pair_id": "", "danger": "", "goal": ""})
        form.changed("safety_goals", form.fields["safety_goals"], now=True)
        rows.refresh()

    def remove(index: int) -> None:
        del form.fields["safety_goals"][index]
        form.changed("safety_goals", form.fields["safety_goals"], now=True)
        rows.refresh()

    rows()
    ui.button(f"Add {VISIT.field('safety_goals').row_word}", icon="add", on_click=add).props("outline").classes(
        "w-full h-12").mark("add-goal")
    form.error_slot("safety_goals")


def action_rows(form: VisitForm) -> None:
    """Actions arising: each becomes an action on the child's care plan when the visit is submitted."""

    @ui.refreshable
    def rows() -> None:
        actions: list[dict[str, Any]] = form.fields.setdefault("actions", [])
        action_label, owner_label, due_label = (c.label for c in VISIT.field("actions").columns)
        for index, row in enumerate(actions):
            with ui.card().classes("w-full p-2 gap-1").props('data-field="action_row"'):
                description = ui.textarea(f"{action_label} {index + 1}", value=row.get("description") or "").props(
                    f'outlined dense autogrow for="visit-action-{index}"').classes("w-full")
                with ui.row().classes("w-full no-wrap gap-2"):
                    owner = ui.input(owner_label, value=row.get("owner") or "").props(
                        f'outlined dense for="visit-action-owner-{index}"').classes("grow min-w-0")
                    due = ui.input(due_label, value=row.get("due") or "").props(
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


# The lists of rows, each drawn by its own function: the rest of the form is drawn from its definition.
ROWS: dict[str, Callable[[VisitForm], None]] = {"safety_scale": scale_rows, "safety_goals": goal_rows,
                                                "actions": action_rows}


def build_fields(form: VisitForm, born: date | None) -> None:
    """Every field of the visit's definition (storage/forms/visit.py) in order, under its section's heading:
    a date and the time after it side by side, a field asked only after another answer in a box shown
    when it is asked, a field for other categories of child left out."""
    fields = VISIT.fields
    for index, f in enumerate(fields):
        if f.kind in ("note", "hidden") or f.only_when_asked or (f.categories and form.category not in f.categories):
            continue  # a correction and a date to confirm are said elsewhere on the page
        if f.section:
            section(f.section)
        if f.kind == "time" and index and fields[index - 1].kind == "date":
            continue  # drawn beside its date
        box = ui.column().classes("w-full gap-1")
        if f.asked_when:
            form.asked_boxes.append((f, box))
        with box:
            if f.kind == "rows":
                if f.label != f.section:
                    ui.label(f.label).classes("font-bold")
                if f.hint:
                    ui.label(f.hint).classes("text-sm")
                ROWS[f.name](form)
            elif index + 1 < len(fields) and f.kind == "date" and fields[index + 1].kind == "time":
                with ui.row().classes("w-full no-wrap gap-2"):
                    with ui.column().classes("grow min-w-0 gap-0"):
                        form.field(f, born)
                    with ui.column().classes("w-32 shrink-0 gap-0"):
                        form.field(fields[index + 1], born)
            else:
                form.field(f, born)
    form.show_asked()


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

    build_fields(form, start.born)

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

"""Wishes and feelings: direct work with the child, their words kept as they said them.

The form saves itself (sealed, as a draft) a couple of seconds after the worker stops typing and whenever
a field loses focus, so a closed tab loses nothing. Saving it for good seals the record and makes it
immutable; a correction is a new record that supersedes the old. Past work is listed below the form,
the child's words in their own style, set apart from the worker's reflection.

The fields are drawn from the form's one definition (storage/forms/wishes.py). Each input carries
`data-field="<name>"`, so the page's
offline script (pwa/static/seen-page.js) can keep the form if the connection drops while it is typed.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from pwa import state, style
from pwa.confirmation import show_in_place
from pwa.date_confirm import offer_confirmation
from pwa.error_summary import error_summary, show_problems
from pwa.form_draft import RESTORED, FormDraft, open_child_form
from pwa.form_fields import field_input, screen_fields
from pwa.form_key import FormKey
from pwa.layout import NOT_FOUND, frame
from pwa.threads import io_bound
from storage.child_forms import FormInvalid
from storage.forms.wishes import WISHES
from storage.record_dates import CONFIRM_FIELD
from storage.store import NotAllowed
from storage.submissions import KEY_FIELD
from storage.timescales.calendar import today_in_england
from storage.wishes import (
    WISHES_DRAFT_KIND,
    WISHES_TEXT_FIELDS,
    WishesView,
    blank_wishes_form,
    submit_wishes,
    wishes_correction_form,
    wishes_for_child,
)


def _entry_card(entry: WishesView, child_first_name: str, on_correct: Any) -> None:
    with ui.card().classes("w-full p-3 gap-2" + (" opacity-80" if entry.superseded_by else "")).props(
            f'data-record="{entry.id}"'):
        with ui.row().classes("w-full items-center gap-2"):
            ui.label(f"{entry.on:%-d %b %Y}").classes("font-bold")
            ui.label(entry.method_words).classes("rounded bg-blue-100 text-blue-900 px-2 text-sm")
            if entry.worker_first_name:
                ui.label(f"with {entry.worker_first_name}").classes("text-sm text-gray-800")
        if entry.superseded_by:
            ui.label("Corrected by a later record (shown above).").classes("text-sm font-bold text-orange-900")
        if entry.supersedes:
            ui.label("This corrects an earlier record.").classes("text-sm text-gray-800")
        style.child_words(entry.child_words, child_first_name)
        if entry.reflection:
            ui.label("Worker's reflection").classes("text-sm font-bold")
            ui.label(entry.reflection).classes("whitespace-pre-wrap")
        if entry.shared_with:
            ui.label(f"Shared with: {entry.shared_with}").classes("text-sm")
        if entry.correctable:
            ui.button("Correct this record", icon="edit", on_click=lambda e=entry: on_correct(e.id)).props(
                "flat no-caps").classes("self-start")


async def wishes_page(child_id: str) -> None:
    opened = await open_child_form("Wishes and feelings", child_id, wishes_for_child, WISHES_DRAFT_KIND)
    if opened is None:
        return
    worker, (heading, entries), draft = opened
    store = state.store()
    back = f"/child/{child_id}"
    today = today_in_england()
    form: dict[str, Any] = {**blank_wishes_form(today), **(draft.fields if draft else {})}

    with frame("Wishes and feelings", back=back):
        key = FormKey(str(form.get(KEY_FIELD) or ""))  # made when the form was opened, or kept in its draft
        ui.label(f"Direct work with {heading.name}").classes("text-xl font-bold").props(
            'role="heading" aria-level="2"')
        done = ui.column().classes("w-full gap-2 hidden").mark("recorded")  # what the last save kept
        correcting = ui.label().classes("font-bold text-orange-900")
        problems = error_summary()
        # Every field as the definition says (storage/forms/wishes.py), the same the checks and the offline page use.
        fields = {f.name: field_input(f, born=heading.born) for f in screen_fields(WISHES)}
        # The record a correction replaces, for the phone's copy of the form if the connection drops.
        supersedes_field = ui.element("input").props('type=hidden data-field="supersedes"')
        submit_button = ui.button("Save wishes and feelings", icon="check").props("no-caps").classes(
            "w-full h-12 text-base").mark("submit")
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            saved = ui.label(RESTORED if draft else "").classes(
                "text-sm text-gray-800 grow").props('aria-live="polite"')
            clear_button = ui.button("Clear form").props("flat no-caps").classes("h-12").mark("clear")
        ui.separator()
        ui.label("Earlier work").classes("text-xl font-bold").props('role="heading" aria-level="2"')
        history = ui.column().classes("w-full gap-3")

    def current() -> dict[str, str]:
        values = {name: str(element.value or "") for name, element in fields.items()}
        values["supersedes"] = form.get("supersedes", "")
        values[CONFIRM_FIELD] = form.get(CONFIRM_FIELD, "")
        values[KEY_FIELD] = key.value
        return values

    form_draft = FormDraft(worker, child_id, WISHES_DRAFT_KIND, current, saved)

    def fill(values: dict[str, Any]) -> None:
        merged = {**blank_wishes_form(today), **values}
        form.clear()
        form.update(merged)
        for name, element in fields.items():
            element.set_value(form.get(name) or WISHES.field(name).default)
        correcting.text = ("You are correcting an earlier record: saving adds a new record that replaces it."
                           if form.get("supersedes") else "")
        supersedes_field.props(f'value="{form.get("supersedes") or ""}"')
        form_draft.dirty = False

    def is_blank() -> bool:
        values = current()
        return not any(values[name].strip() for name in WISHES_TEXT_FIELDS) and not values["supersedes"]

    def show_history(items: list[WishesView]) -> None:
        history.clear()
        with history:
            if not items:
                ui.label("No wishes-and-feelings work recorded yet.")
            for entry in items:
                _entry_card(entry, heading.first_name, correct)

    async def correct(record_id: str) -> None:
        if not is_blank():
            ui.notify("Save or clear the form you are writing first, then correct the earlier record.",
                      type="warning")
            return
        try:
            values = await io_bound(wishes_correction_form, store, worker, child_id, record_id)
        except FormInvalid as e:
            ui.notify(str(e), type="warning")
            return
        fill(values)
        key.renew()  # a correction is a new record
        form_draft.changed()
        await form_draft.save()
        fields["child_words"].run_method("focus")

    async def submit() -> None:
        values = current()  # as it is at the tap: a second tap sends the same form, with the same key
        problems.clear()
        done.clear()
        done.classes(add="hidden")
        try:
            async with form_draft.lock:  # no autosave may land after it and bring back the draft it deleted
                record = await io_bound(submit_wishes, store, worker, child_id, values)
                form_draft.dirty = False
        except FormInvalid as e:
            show_problems(problems, e.problems, fields=fields)

            async def confirm(day: str) -> None:
                form[CONFIRM_FIELD] = day
                await submit()

            offer_confirmation(problems, e.problems, values["on"], "the work was on", confirm)
            return
        except NotAllowed:
            with problems:
                ui.label(NOT_FOUND)
            return
        fill({})
        key.stored()  # emptied, but a second tap still answers with this record until a new one is begun
        saved.text = "Saved. The record is now sealed and cannot be changed; correct it with a new record."
        _, items = await io_bound(wishes_for_child, store, worker, child_id)
        show_history(items)
        await show_in_place(done, child_id, "wishes_and_feelings", record.id)

    async def clear() -> None:
        await form_draft.discard(lambda: fill({}))
        saved.text = "Form cleared."

    fill(form)
    for element in fields.values():
        element.on_value_change(key.changed)
    form_draft.keep(fields.values())
    for name, element in fields.items():
        if WISHES.field(name).kind in ("choice", "yesno"):
            element.on_value_change(form_draft.save)  # a choice is kept at once
    submit_button.on_click(submit)
    clear_button.on_click(clear)
    show_history(entries)


def register() -> None:
    ui.page("/child/{child_id}/wishes", title="Wishes and feelings · Seen")(wishes_page)

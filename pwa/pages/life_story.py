"""Life story: dated entries in the chapters of the child's life-story book, with photos from the phone.

The words of the entry being written (and a correction in progress: which entry, which of its photos stay)
are kept as a sealed draft as the worker types (pwa/form_draft.py), restored when they come back. Photos
waiting to be added are not in that draft: the page holds them until the entry is added.

Photos are downscaled and sealed like every other record (storage/photos.py) and reach the screen
only through `/photo/{id}`, which opens them for a worker who may see the child. `Export life-story book`
makes the PDF the child keeps (storage/life_story_book.py).

The text inputs carry `data-field="<name>"` (storage.life_story's form), so the page's offline
script (pwa/static/seen-page.js) can keep the words if the connection drops. It keeps the photos too: the
uploaders carry `data-offline-photos`, and each photo waiting to be added shows the SHA-256 of the file as
it arrived (`data-photo-sha`), so the script knows which of the photos it copied the page holds. A photo
picked with no signal is kept sealed on the phone with the draft, and handed to the page when the
connection comes back (or sent with the draft from the offline page).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import Response
from nicegui import app, events, ui

from pwa import state
from pwa.auth import current_worker
from pwa.confirmation import show_in_place
from pwa.error_summary import error_summary, show_problems
from pwa.form_draft import RESTORED, FormDraft, open_child_form
from pwa.form_fields import field_input, screen_fields
from pwa.form_key import FormKey
from pwa.layout import NOT_FOUND, frame, photo_preview
from pwa.threads import io_bound
from storage.child_forms import FormInvalid
from storage.forms.life_story import LIFE_STORY
from storage.life_story import (
    LIFE_STORY_DRAFT_KIND,
    LifeStoryItem,
    LifeStorySection,
    add_life_story_entry,
    blank_life_story_form,
    correct_life_story_entry,
    life_story_book,
    life_story_for_child,
)
from storage.life_story_book import life_story_pdf
from storage.photos import PHOTOS_PER_ENTRY, photo_for_worker, prepare_photo
from storage.store import NotAllowed
from storage.submissions import KEY_FIELD
from storage.timescales.calendar import today_in_england


def export_book(worker: Any, child_id: str) -> tuple[str, bytes]:
    """The child's first name and their book as PDF bytes (NotAllowed for a child the worker may not see)."""
    book = life_story_book(state.store(), worker, child_id)
    return book.first_name, life_story_pdf(book)


def _section_card(section: LifeStorySection, worker_id: str, correct: Callable[[LifeStoryItem], Any]) -> None:
    with ui.card().classes("w-full p-3 gap-2").props(f'data-section="{section.code}"'):
        ui.label(section.title).classes("text-lg font-bold text-primary").props('role="heading" aria-level="3"')
        if not section.entries:
            ui.label("Nothing in this chapter yet.").classes("text-gray-800")
        for entry in section.entries:
            with ui.column().classes("w-full gap-1 border-l-4 border-blue-200 pl-3"):
                ui.label(f"{entry.on:%-d %B %Y}").classes("text-sm text-gray-800")
                ui.label(entry.title).classes("font-bold")
                if entry.text:
                    ui.label(entry.text).classes("whitespace-pre-wrap")
                for number, photo_id in enumerate(entry.photo_ids, start=1):
                    ui.image(f"/photo/{photo_id}").props(
                        f'alt="Photo {number} for {entry.title}" loading=lazy fit=contain').classes(
                        "w-full max-h-80 rounded")
                if entry.worker_first_name:
                    added = f"Added with {entry.worker_first_name}" + (" (corrected)" if entry.corrects else "")
                    ui.label(added).classes("text-sm text-gray-800")
                if entry.worker_id == worker_id:
                    button = ui.button("Correct this entry", icon="edit", on_click=lambda e=entry: correct(e)).props(
                        "flat no-caps").classes("self-start min-h-[48px]").mark("correct", f"correct-{entry.id}")
                    # Set as a value, not parsed from a props string: the title is the worker's own words.
                    button.props["aria-label"] = f"Correct this entry: {entry.title}"


async def life_story_page(child_id: str) -> None:
    opened = await open_child_form("Life story", child_id, life_story_for_child, LIFE_STORY_DRAFT_KIND)
    if opened is None:
        return
    worker, (heading, sections), draft = opened
    store = state.store()
    back = f"/child/{child_id}"
    today = today_in_england()
    pending: list[tuple[str, bytes]] = []  # photos to add: the SHA-256 of the file as it arrived, and the photo

    with frame("Life story", back=back):
        ui.label(f"{heading.first_name}'s life-story book").classes("text-xl font-bold").props(
            'role="heading" aria-level="2"')
        export_button = ui.button("Export life-story book", icon="menu_book").props("no-caps").classes(
            "w-full h-12 text-base").mark("export")
        ui.separator()
        # The form's key: made when the page opened, or kept in its draft (pwa/form_key.py).
        key = FormKey(str((draft.fields if draft else {}).get(KEY_FIELD) or ""))
        form_heading = ui.label("Add an entry").classes("text-lg font-bold").props(
            'role="heading" aria-level="2" tabindex="-1"').mark("form-heading")
        correcting_note = ui.label().classes("font-bold text-orange-900").mark("correcting")
        done = ui.column().classes("w-full gap-2 hidden").mark("recorded")  # what the last save kept
        problems = error_summary()
        blank = blank_life_story_form(today)
        # The words as the definition says (storage/forms/life_story.py), as the checks and the offline page.
        fields = {f.name: field_input(f, blank.get(f.name), born=heading.born) for f in screen_fields(LIFE_STORY)}
        on, section, title, text = (fields[name] for name in ("on", "section", "title", "text"))
        # The correction in progress, for the phone's copy of the form if the connection drops.
        corrects_field = ui.element("input").props('type=hidden data-field="corrects"')
        keep_field = ui.element("input").props('type=hidden data-field="keep"')
        ui.label("Photos").classes("text-sm font-bold")
        # Quasar's uploader header is not accessible (unnamed, nested controls): the uploaders stay hidden
        # and two plain buttons open them. The camera one asks the phone for its camera directly.
        camera = ui.upload(auto_upload=True, max_files=PHOTOS_PER_ENTRY).props(
            'accept="image/*" capture="environment" data-offline-photos').classes("hidden").mark("camera")
        library = ui.upload(auto_upload=True, multiple=True, max_files=PHOTOS_PER_ENTRY).props(
            'accept="image/*" data-offline-photos').classes("hidden").mark("library")
        with ui.row().classes("w-full gap-2 no-wrap"):
            ui.button("Take a photo", icon="photo_camera", on_click=lambda: camera.run_method("pickFiles")).props(
                "outline no-caps").classes("grow h-12")
            ui.button("Choose photos", icon="photo_library", on_click=lambda: library.run_method("pickFiles")).props(
                "outline no-caps").classes("grow h-12")
        waiting = ui.label().classes("text-sm").props('aria-live="polite"')
        previews = ui.row().classes("w-full gap-2")
        save_button = ui.button("Add to the book", icon="add").props("no-caps").classes("w-full h-12 text-base").mark(
            "save")
        cancel_button = ui.button("Stop correcting", on_click=lambda: clear()).props(
            "flat no-caps").classes("w-full h-12").mark("cancel-correction")
        cancel_button.set_visibility(False)
        with ui.row().classes("w-full items-center gap-2 no-wrap"):
            saved = ui.label(RESTORED if draft else "").classes("text-sm text-gray-800 grow").props(
                'aria-live="polite"')
            ui.button("Clear form", on_click=lambda: clear()).props("flat no-caps").classes(
                "h-12").mark("clear")
        ui.separator()
        ui.label("The book so far").classes("text-lg font-bold").props('role="heading" aria-level="2"')
        book = ui.column().classes("w-full gap-3")

    # A correction in progress: the entry it replaces and which of that entry's photos stay.
    correcting: dict[str, Any] = {"entry": None, "keep": []}

    def show_book(items: list[LifeStorySection]) -> None:
        book.clear()
        with book:
            for item in items:
                _section_card(item, worker.id, correct)

    def current() -> dict[str, Any]:
        """The form as it stands, with the correction in progress: what the draft keeps."""
        entry: LifeStoryItem | None = correcting["entry"]
        return {"on": on.value or "", "section": section.value or "", "title": title.value or "",
                "text": text.value or "", "corrects": entry.id if entry else "",
                "keep": list(correcting["keep"]) if entry else [], KEY_FIELD: key.value}

    form_draft = FormDraft(worker, child_id, LIFE_STORY_DRAFT_KIND, current, saved)

    def fill(values: dict[str, Any], entry: LifeStoryItem | None = None, keep: list[str] | None = None) -> None:
        correcting.update(entry=entry, keep=list(keep or []))
        on.value, title.value, text.value = values.get("on") or blank["on"], values.get("title", ""), values.get(
            "text", "")
        section.value = values.get("section") or None
        form_heading.text = "Correct an entry" if entry else "Add an entry"
        correcting_note.text = (f"You are correcting \"{entry.title}\". Saving puts the corrected entry in the book "
                                "in place of this one; the original is kept on the record." if entry else "")
        save_button.text = "Save the correction" if entry else "Add to the book"
        cancel_button.set_visibility(entry is not None)
        show_pending()
        form_draft.dirty = False

    async def correct(entry: LifeStoryItem) -> None:
        if pending or (not correcting["entry"] and ((title.value or "").strip() or (text.value or "").strip())):
            ui.notify("Add or clear the entry you are writing first, then correct the earlier one.", type="warning")
            return
        problems.clear()
        fill({"on": entry.on.isoformat(), "section": entry.section, "title": entry.title, "text": entry.text},
             entry, entry.photo_ids)
        key.renew()  # a correction is a new entry
        form_draft.changed()  # the correction is kept from the start, even before a word is changed
        await form_draft.save()
        form_heading.run_method("scrollIntoView")
        title.run_method("focus")

    def restore_draft(values: dict[str, Any], items: list[LifeStorySection]) -> None:
        """The form as the worker left it; a correction only while its entry is still theirs to correct."""
        if not values.get("corrects"):
            fill(values)
            return
        entry = next((e for item in items for e in item.entries
                      if e.id == values["corrects"] and e.worker_id == worker.id), None)
        if entry is None:
            fill(values)
            saved.text = ("Draft restored, but the entry you were correcting has changed since: "
                          "your words are here as a new entry.")
            return
        fill(values, entry, [p for p in values.get("keep") or [] if p in entry.photo_ids])

    def drop_kept(photo_id: str) -> None:
        correcting["keep"].remove(photo_id)
        form_draft.changed()
        show_pending()

    def show_pending() -> None:
        count = len(pending)
        kept: list[str] = correcting["keep"]
        entry: LifeStoryItem | None = correcting["entry"]
        corrects_field.props(f'value="{entry.id if entry else ""}"')
        keep_field.props(f'value="{",".join(kept) if entry else ""}"')
        waiting.text = ", ".join(part for part in (
            f"{len(kept)} photo{'s' if len(kept) != 1 else ''} kept from the entry" if kept else "",
            f"{count} photo{'s' if count != 1 else ''} ready to add" if count else "") if part)
        previews.clear()
        with previews:
            for index, photo_id in enumerate(kept):
                with ui.column().classes("items-center gap-1").props("data-photo-kept"):
                    ui.image(f"/photo/{photo_id}").props(f'alt="Kept photo {index + 1}"').classes("w-24 h-24 rounded")
                    ui.button("Remove", on_click=lambda p=photo_id: drop_kept(p)).props(
                        f'flat dense no-caps aria-label="Remove kept photo {index + 1}"').mark("drop-kept")
            for index, (sha, image) in enumerate(pending):
                with ui.column().classes("items-center gap-1").props(f"data-photo-sha={sha}"):
                    ui.image(photo_preview(image)).props(f'alt="New photo {index + 1}"').classes("w-24 h-24 rounded")
                    ui.button("Remove", on_click=lambda i=index: remove(i)).props("flat dense no-caps")

    def remove(index: int) -> None:
        del pending[index]
        show_pending()

    async def photo_added(e: events.UploadEventArguments) -> None:
        data = await e.file.read()
        try:
            image = await io_bound(prepare_photo, data)
        except FormInvalid as problem:
            ui.notify(str(problem), type="warning")
            return
        if len(pending) + len(correcting["keep"]) >= PHOTOS_PER_ENTRY:
            ui.notify(f"An entry can hold up to {PHOTOS_PER_ENTRY} photos.", type="warning")
            return
        pending.append((hashlib.sha256(data).hexdigest(), image))
        key.changed()
        show_pending()

    async def save() -> None:
        # As it is at the tap: a second tap sends the same entry, with the same key.
        fields = {"on": on.value or "", "section": section.value or "", "title": title.value or "",
                  "text": text.value or "", KEY_FIELD: key.value}
        entry: LifeStoryItem | None = correcting["entry"]
        photos, keep = [p for _, p in pending], list(correcting["keep"])
        problems.clear()
        done.clear()
        done.classes(add="hidden")
        try:
            async with form_draft.lock:  # no autosave may land after it and bring back the draft it deleted
                if entry is None:
                    saved_entry = await io_bound(add_life_story_entry, store, worker, child_id, fields, photos)
                else:
                    saved_entry = await io_bound(correct_life_story_entry, store, worker, child_id, entry.id,
                                                 fields, keep, photos)
                form_draft.dirty = False
        except FormInvalid as e:
            show_problems(problems, e.problems,
                          "Nothing was changed yet." if entry else "Nothing was added yet.",
                          fields={**fields, "photo": save_button})
            return
        except NotAllowed:
            with problems:
                ui.label(NOT_FOUND)
            return
        empty_form()
        key.stored()  # emptied, but a second tap still answers with this entry until a new one is begun
        saved.text = ""
        _, items = await io_bound(life_story_for_child, store, worker, child_id)
        show_book(items)
        await show_in_place(done, child_id, "life_story", saved_entry.id)

    def empty_form() -> None:
        pending.clear()
        camera.reset()
        library.reset()
        fill({})

    async def clear() -> None:
        await form_draft.discard(empty_form)
        saved.text = "Form cleared."

    async def export() -> None:
        export_button.props("loading")
        try:
            first_name, pdf = await io_bound(export_book, worker, child_id)
        except NotAllowed:
            ui.notify(NOT_FOUND, type="warning")
            return
        finally:
            export_button.props(remove="loading")
        ui.download.content(pdf, f"{first_name or 'my'}-life-story-book.pdf".lower(), "application/pdf")
        ui.notify("Life-story book ready", type="positive")

    if draft:
        restore_draft(draft.fields, sections)
    for element in (on, section, title, text):
        element.on_value_change(key.changed)
    form_draft.keep((on, section, title, text))
    section.on_value_change(form_draft.save)
    camera.on_upload(photo_added)
    library.on_upload(photo_added)
    save_button.on_click(save)
    export_button.on_click(export)
    show_book(sections)


def serve_photo(photo_id: str) -> Response:
    """A sealed photo, opened for a worker who may see its child; anyone else gets 'not found'."""
    try:
        image, mime = photo_for_worker(state.store(), current_worker(), photo_id)
    except (NotAllowed, PermissionError):
        return Response("Not found", status_code=404, media_type="text/plain")
    # Never cached: a shared or lost phone must not keep the child's photos outside the sealed store.
    return Response(image, media_type=mime, headers={"Cache-Control": "no-store"})


def register() -> None:
    ui.page("/child/{child_id}/life-story", title="Life story · Seen")(life_story_page)
    app.get("/photo/{photo_id}", include_in_schema=False)(serve_photo)

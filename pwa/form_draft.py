"""A form's sealed draft on the server, kept as the worker types, so nothing typed is lost.

The draft (storage/drafts.save_draft) is saved a couple of seconds after the worker stops typing, when a
field loses focus, and when the page's connection closes (a closed tab, a phone that killed the browser).
The page restores it when the worker comes back, in this browser or another. Used by the wishes-and-
feelings, life-story and visit pages.

One lock per worker, child and kind of form, shared by every tab, so two saves of one draft never
interleave; a submit or a clear holds it too, so no autosave lands after them and brings the draft back.
A page opening asks the pages already open on the same draft to save first: the server has every
keystroke they received, so the new page opens with the last words typed, not those of the last tick.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from nicegui import ui
from nicegui.elements.mixins.value_element import ValueElement

from pwa import state
from pwa.auth import current_worker
from pwa.layout import NOT_FOUND, frame
from pwa.threads import io_bound
from storage.drafts import SavedDraft, discard_draft, load_draft, save_draft
from storage.models import Worker
from storage.store import NotAllowed, Store
from storage.timescales.calendar import LONDON

AUTOSAVE_SECONDS = 2.0
RESTORED = "Draft restored: carry on where you left off."
T = TypeVar("T")



class _Shared:
    """What the pages open on one draft share: its lock, and the pages themselves."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.pages: weakref.WeakSet[FormDraft] = weakref.WeakSet()


# Per event loop, as an asyncio lock belongs to one (the app runs one; tests start one a test).
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, str], _Shared]] = (
    weakref.WeakKeyDictionary())


def _shared(worker: Worker, child_id: str, kind: str) -> _Shared:
    drafts = _SHARED.setdefault(asyncio.get_running_loop(), {})
    return drafts.setdefault((worker.id, child_id, kind), _Shared())


async def save_open(worker: Worker, child_id: str, kind: str) -> None:
    """Saves what the pages already open on this draft hold, before a new page reads it."""
    for earlier in list(_shared(worker, child_id, kind).pages):
        await earlier.save()


async def restore(worker: Worker, child_id: str, kind: str) -> SavedDraft | None:
    """The draft to open the form with, once the pages already open on it have saved what they hold."""
    await save_open(worker, child_id, kind)
    return await io_bound(load_draft, state.store(), worker, child_id, kind)


async def open_child_form(title: str, child_id: str, load: Callable[[Store, Worker, str], T], kind: str
                          ) -> tuple[Worker, T, SavedDraft | None] | None:
    """Opens a page with a form about a child: the worker, what `load` reads for the page and the draft to
    restore. For a child the worker may not see, the page says "not found" and None comes back."""
    worker = current_worker()
    try:
        loaded = await io_bound(load, state.store(), worker, child_id)
        draft = await restore(worker, child_id, kind)
    except NotAllowed:
        with frame(title, back=f"/child/{child_id}"):
            ui.label(NOT_FOUND).props('role="alert"')
        return None
    return worker, loaded, draft


class FormDraft:
    """One page's form and its draft: `read` gives the form as it stands, `status` says when it was saved."""

    def __init__(self, worker: Worker, child_id: str, kind: str, read: Callable[[], dict[str, Any]],
                 status: ui.label | None = None) -> None:
        self.worker = worker
        self.child_id = child_id
        self.kind = kind
        self.read = read
        self.status = status
        self.dirty = False
        shared = _shared(worker, child_id, kind)
        self.lock = shared.lock
        shared.pages.add(self)

    def changed(self) -> None:
        self.dirty = True

    async def save(self) -> None:
        """Saves the draft if anything changed since the last save.

        The lock first, then `dirty`: a save that finds another write under way waits for it, then saves
        whatever was typed meanwhile (a submit or clear leaves nothing dirty to save)."""
        async with self.lock:
            if not self.dirty:
                return
            self.dirty = False
            try:
                when = await io_bound(save_draft, state.store(), self.worker, self.child_id, self.read(), self.kind)
            except Exception:
                self.dirty = True  # try again on the next tick; the words are still on the screen
                self._say("Could not save the draft just now. Keep this page open; Seen will try again.")
                raise
            self._say(f"Draft saved at {when.astimezone(LONDON):%H:%M:%S}")

    def _say(self, text: str) -> None:
        if self.status is not None:
            self.status.text = text

    async def discard(self, clear_form: Callable[[], None]) -> None:
        """Clears the form and deletes its draft, with no save in between."""
        async with self.lock:
            clear_form()
            self.dirty = False
            await io_bound(discard_draft, state.store(), self.worker, self.child_id, self.kind)

    def keep(self, elements: Iterable[ValueElement] = ()) -> None:
        """Saves as the worker types into these inputs, every few seconds, and when the page goes."""
        for element in elements:
            element.on_value_change(self.changed)
            element.on("blur", self.save)
        ui.timer(AUTOSAVE_SECONDS, self.save)
        ui.context.client.on_disconnect(self.save)

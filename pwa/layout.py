"""The frame every screen sits in: a header with the screen's title, navigation and connection status."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from nicegui import ui
from PIL import Image

from pwa.auth import current_worker, is_admin, is_manager
from pwa.idle_lock import install_idle_lock
from storage.child_view import clock_name
from storage.models import Worker
from storage.timescales import Clock
from storage.timescales.calendar import LONDON, today_in_england

THEME = {"primary": "#1d4f91", "secondary": "#00703c", "accent": "#6f2da8", "negative": "#b3261e",
         "warning": "#8a4b00", "positive": "#00703c"}

# Status colours are never the only signal: each status is always shown with its word too.
STATUS_STYLE = {
    "unknown": ("Cannot work out what is due", "bg-gray-800 text-white"),  # the record lacks a date (caseload.py)
    "overdue": ("Overdue", "bg-red-800 text-white"),
    "due_today": ("Due today", "bg-orange-700 text-white"),
    "due_soon": ("Due soon", "bg-yellow-300 text-black"),
    "on_track": ("On track", "bg-green-800 text-white"),
}


# What a worker sees for a child they may not see, or that does not exist: the same words either way.
NOT_FOUND = "Child not found. They may not be on your caseload."


def not_found(back: str = "/") -> None:
    """The page for a child the worker may not see, or that does not exist: no hint which."""
    with frame("Not found", back=back):
        ui.label(NOT_FOUND).props('role="alert"')
        ui.link("Back to my caseload", "/").classes("text-primary text-lg")


def when(moment: datetime | None) -> str:
    """A moment as England's clock on the wall showed it: "4 Dec 2026, 14:05"."""
    return moment.astimezone(LONDON).strftime("%-d %b %Y, %H:%M") if moment else ""


def clock_line(clock: Clock, today: date | None = None) -> str:
    """"Statutory visit due 4 Dec 2026 (in 11 days)": the clock, its date and how far off it is."""
    days = (clock.due - (today or today_in_england())).days
    how_far = ("today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}" if days > 0
               else f"{-days} day{'s' if days != -1 else ''} overdue")
    return f"{clock_name(clock)} due {clock.due:%-d %b %Y} ({how_far})"


def status_badge(status: str) -> ui.label:
    word, classes = STATUS_STYLE[status]
    return ui.label(word).classes(f"{classes} rounded px-2 py-0.5 text-sm font-bold whitespace-nowrap")


def refused_drafts(child_id: str = "") -> None:
    """Where the phone shows the drafts Seen refused (all, or this child's), each with why and a link to fix it.

    They live only on the phone (sealed in its browser), so pwa/static/seen-refused.js fills this in."""
    ui.element("div").classes("w-full").props(f'id="seen-refused-drafts" data-child-id="{child_id}"')


TOGGLE_MENU = """() => {
  const menu = document.getElementById('seen-menu');
  const open = menu.classList.toggle('hidden') === false;
  document.querySelector('[aria-controls=seen-menu]').setAttribute('aria-expanded', String(open));
}"""


def menu_entries(worker: Worker) -> list[tuple[str, str]]:
    """The menu's entries for this worker, in order: (words, path)."""
    entries = [("My caseload", "/")]
    if is_manager(worker):
        entries += [("Team dashboard", "/team"), ("Sign-off queue", "/signoff"), ("Audit trail", "/audit"),
                    ("Returns", "/returns"), ("Devices", "/devices"), ("Conflicts", "/conflicts")]
    if is_admin(worker):
        entries.append(("Administration", "/admin"))
    return entries + [("Settings", "/settings"), ("Sign out", "/logout")]


@contextmanager
def frame(title: str, *, back: str | None = None) -> Iterator[None]:
    """Builds the header and navigation, then the page's own content inside a phone-width column."""
    ui.colors(**THEME)
    ui.add_head_html('<meta name="theme-color" content="#1d4f91">')
    install_idle_lock()
    # A worker screen: the phone is the worker's again (pwa/static/seen-child-guard.js).
    ui.add_head_html("<script>localStorage.removeItem('seen-child-mode')</script>")
    worker = current_worker()
    # One row at any width: a long title or status is cut short with an ellipsis, never wrapped.
    with ui.header().classes("items-center no-wrap gap-1 px-2 py-1 bg-primary"):
        if back:
            ui.button(icon="arrow_back", on_click=lambda: ui.navigate.to(back)).props(
                'flat round color=white aria-label="Back"')
        ui.label(title).classes("text-lg font-bold grow min-w-0 truncate").props('role="heading" aria-level="1"')
        # Empty until the page knows whether it is online (pwa/static/seen-page.js fills it in).
        ui.label().props('id="seen-connection" aria-live="polite"').classes(
            "text-sm min-w-0 max-w-[45%] truncate shrink")
        menu_button = ui.button(icon="menu").props(
            'flat round color=white aria-label="Menu" aria-expanded="false" aria-controls="seen-menu"')
        # GOV.UK's header menu: a button that shows or hides a list of links, hanging below the header and
        # inside it (the banner landmark). Opened on the phone itself, so it opens without a connection.
        with ui.element("nav").props('id="seen-menu" aria-label="Menu"').classes("seen-menu hidden"):
            with ui.element("ul"):
                for words, path in menu_entries(worker):
                    with ui.element("li"):
                        ui.link(words, path)
        menu_button.on("click", js_handler=TOGGLE_MENU)
    # Quasar's page is the <main> landmark already: the column inside it is not another one.
    with ui.column().classes("w-full max-w-3xl mx-auto p-3 gap-3"):
        yield


def photo_preview(image: bytes) -> str:
    """A small data URL of a photo not yet saved, so whoever adds it sees what they are adding."""
    with Image.open(io.BytesIO(image)) as picture:
        picture.thumbnail((240, 240))
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()

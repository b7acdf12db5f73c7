"""The frame every screen sits in: a header with the screen's title, navigation and connection status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from pwa.auth import current_worker, is_admin, is_manager
from pwa.idle_lock import install_idle_lock

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


def show_problems(place: ui.column, problems: dict[str, str], lead: str = "Nothing was saved yet. Please fix:"
                  ) -> None:
    """Replaces `place`'s content with what the worker must fix before a form can be saved."""
    place.clear()
    with place:
        ui.label(lead).classes("font-bold")
        for message in problems.values():
            ui.label(message)


def status_badge(status: str) -> ui.label:
    word, classes = STATUS_STYLE[status]
    return ui.label(word).classes(f"{classes} rounded px-2 py-0.5 text-sm font-bold whitespace-nowrap")


def refused_drafts(child_id: str = "") -> None:
    """Where the phone shows the drafts Seen refused (all, or this child's), each with why and a link to fix it.

    They live only on the phone (sealed in its browser), so pwa/static/seen-refused.js fills this in."""
    ui.element("div").classes("w-full").props(f'id="seen-refused-drafts" data-child-id="{child_id}"')


@contextmanager
def frame(title: str, *, back: str | None = None) -> Iterator[None]:
    """Builds the header and navigation, then the page's own content inside a phone-width column."""
    ui.colors(**THEME)
    ui.add_head_html('<meta name="theme-color" content="#1d4f91">')
    install_idle_lock()
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
        with ui.button(icon="menu").props('flat round color=white aria-label="Menu"'):
            with ui.menu():
                ui.menu_item("My caseload", on_click=lambda: ui.navigate.to("/"))
                if is_manager(worker):
                    ui.menu_item("Team dashboard", on_click=lambda: ui.navigate.to("/team"))
                    ui.menu_item("Sign-off queue", on_click=lambda: ui.navigate.to("/signoff"))
                if is_admin(worker):
                    ui.menu_item("Administration", on_click=lambda: ui.navigate.to("/admin"))
                ui.menu_item("Settings", on_click=lambda: ui.navigate.to("/settings"))
                ui.menu_item("Sign out", on_click=lambda: ui.navigate.to("/logout"))
    with ui.column().classes("w-full max-w-3xl mx-auto p-3 gap-3").props('role="main"'):
        yield

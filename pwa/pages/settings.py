"""Settings: who is signed in, when the app locks itself, and sections other parts of Seen add.

Other modules add a section with `add_section("notifications", "Notifications", build)`; `build(worker)`
builds the section's content (it may be async).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import ui

from pwa.auth import current_worker
from pwa.layout import frame
from storage.config import settings
from storage.models import Role, Worker

ROLE_WORDS = {Role.practitioner.value: "Social worker", Role.manager.value: "Team manager",
              Role.admin.value: "Administrator"}
SectionBuilder = Callable[[Worker], None | Awaitable[None]]


@dataclass
class Section:
    key: str
    title: str
    build: SectionBuilder
    order: int = 100


SECTIONS: list[Section] = []


def add_section(key: str, title: str, build: SectionBuilder, order: int = 100) -> None:
    """Adds a section to the settings screen, replacing any section with the same key."""
    SECTIONS[:] = [s for s in SECTIONS if s.key != key]
    SECTIONS.append(Section(key, title, build, order))


async def settings_page() -> None:
    worker = current_worker()
    minutes = settings().idle_lock_minutes
    with frame("Settings", back="/"):
        with ui.card().classes("w-full p-3 gap-1").mark("signed-in"):
            ui.label("Signed in").classes("text-lg font-bold").props('role="heading" aria-level="2"')
            ui.label(worker.display_name).classes("text-lg")
            ui.label(f"Username: {worker.username}")
            ui.label(ROLE_WORDS.get(worker.role, worker.role))
        with ui.card().classes("w-full p-3 gap-2").mark("idle-lock"):
            ui.label("Locking").classes("text-lg font-bold").props('role="heading" aria-level="2"')
            ui.label(f"Seen locks itself after {minutes} minute{'s' if minutes != 1 else ''} without use, "
                     "and shows nothing about any child while locked.")
            ui.button("Lock now", icon="lock", on_click=lambda: ui.navigate.to("/logout?locked=1")).classes(
                "w-full h-12")
        for section in sorted(SECTIONS, key=lambda s: (s.order, s.title)):
            with ui.card().classes("w-full p-3 gap-2").props(f'data-section="{section.key}"'):
                ui.label(section.title).classes("text-lg font-bold").props('role="heading" aria-level="2"')
                result = section.build(worker)
                if inspect.isawaitable(result):
                    await result
        ui.button("Sign out", icon="logout", on_click=lambda: ui.navigate.to("/logout")).props(
            "outline").classes("w-full h-12")


def register() -> None:
    ui.page("/settings", title="Settings · Seen")(settings_page)

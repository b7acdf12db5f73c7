"""The Returns page: for a manager, each child in their teams with what the statutory returns (SSDA903, the
CIN census) would reject now, in words, so it is put right while the worker still knows the answer.

Managers only; the store refuses (and audits) anyone else. The checks live in storage/returns/rules.py.
"""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import frame
from pwa.threads import io_bound
from storage.returns import rules
from storage.store import NotAllowed


async def returns_page() -> None:
    try:
        children = await io_bound(rules.problems_by_child, state.store(), current_worker())
    except NotAllowed as refusal:
        with frame("Returns"):
            ui.label(str(refusal)).props('role="alert"')
        return
    with frame("Returns"):
        if not children:
            ui.label("Nothing in your teams' records would fail the statutory returns now.").mark("returns-clear")
            return
        count = sum(len(c.problems) for c in children)
        ui.label(f"{count} thing{'s' if count != 1 else ''} would fail the statutory returns now, for "
                 f"{len(children)} child{'ren' if len(children) != 1 else ''}.").classes("text-gray-800")
        for child in children:
            with ui.card().classes("w-full").mark(f"returns-child-{child.child_id}"):
                ui.link(child.name, f"/child/{child.child_id}").classes("text-lg font-bold")
                with ui.column().classes("gap-1"):
                    for problem in child.problems:
                        ui.label(problem.words).props(f'data-rule="{problem.code}"')


def register() -> None:
    ui.page("/returns", title="Returns · Seen")(returns_page)

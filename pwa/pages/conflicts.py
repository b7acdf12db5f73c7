"""Conflicts: two edits of the same field that crossed, for a manager of the child's team to decide. Both values
side by side, who wrote each and when; the decision is kept, audited and reaches every device
(storage/sync/conflicts.py). Until then the child's page says a decision is waiting."""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import frame, when
from pwa.threads import io_bound
from storage.store import NotAllowed
from storage.sync import conflicts as sync_conflicts


async def conflicts_page() -> None:
    worker = current_worker()
    choices = await io_bound(sync_conflicts.conflicts_to_decide, state.store(), worker)
    with frame("Conflicts"):
        if not choices:
            ui.label("No conflicts wait for your decision.")
        for choice in choices:
            conflict_card(choice)


def conflict_card(choice: sync_conflicts.ConflictChoice) -> None:
    with ui.card().classes("w-full p-3 gap-2").props(f'data-conflict="{choice.id}"') as card:
        ui.link(f"{choice.child_name}: {choice.what}", f"/child/{choice.child_id}").classes("font-bold text-primary")
        message = ui.label().classes("text-red-800").props('role="alert"')

        async def decide(keep: str) -> None:
            try:
                await io_bound(sync_conflicts.decide_conflict, state.store(), current_worker(), choice.id, keep)
            except NotAllowed as refusal:
                message.text = str(refusal)
                return
            card.delete()
            ui.notify("Decided. The record shows the value you kept, on every device.")

        with ui.row().classes("w-full gap-2 items-stretch"):
            for keep, side, title in (("winner", choice.kept, "Shown now"), ("loser", choice.other, "Also written")):
                with ui.column().classes("grow basis-40 gap-1 rounded border p-2"):
                    ui.label(title).classes("text-sm text-gray-800")
                    ui.label(str(side.value) if side.value not in (None, "") else "(empty)").classes(
                        "whitespace-pre-wrap")
                    ui.label(f"By {side.who}" + (f", {when(side.when)}" if side.when else "")).classes("text-sm")
                    ui.button("Keep this", on_click=lambda k=keep: decide(k)).mark(f"keep-{keep}")


def register() -> None:
    ui.page("/conflicts", title="Conflicts · Seen")(conflicts_page)

"""Devices: each worker's devices in the manager's teams (last sync, changes waiting, set aside, conflicts,
revoked), and the edits that arrived for a child after the child moved, for the manager to deal with.

Managers only; storage (storage/sync/behind.py, storage/sync/moved.py) checks and audits who may see and decide.
"""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import frame, when
from pwa.threads import io_bound
from storage.store import NotAllowed
from storage.sync import behind, moved
from storage.sync.refusal import SyncRefused
from storage.timescales.calendar import today_in_england


async def devices_page() -> None:
    worker = current_worker()
    store = state.store()
    try:
        rows = await io_bound(behind.team_devices, store, worker, today_in_england())
        late = await io_bound(moved.late_changes, store, worker)
    except NotAllowed as refusal:
        with frame("Devices"):
            ui.label(str(refusal)).props('role="alert"')
        return
    with frame("Devices"):
        ui.label("Each device's own report at its last sync.").classes("text-sm text-gray-800")
        if not rows:
            ui.label("No device is enrolled for your teams yet.")
        for r in rows:  # a card each, not a table: a phone's width holds no seven columns
            with ui.card().classes("w-full p-2 gap-0").props(f'data-device="{r.device.id}"'):
                ui.label(f"{r.worker.display_name}: {r.device.name}").classes("font-bold")
                ui.label("Last sync " + (when(r.device.last_sync_at) if r.device.last_sync_at else "never"))
                ui.label(f"{r.device.waiting} waiting · {r.device.set_aside} set aside · "
                         f"{r.device.conflicts} conflicts")
                standing = ("Revoked" if r.device.revoked_at else f"Behind since {r.behind_since:%-d %b %Y}"
                         if r.behind_since else "Up to date")
                ui.label(standing).classes("text-orange-950 font-bold" if r.behind_since else "")
        ui.label("Edits for children who moved").classes("text-lg font-bold mt-4").props(
            'role="heading" aria-level="2"')
        if not late:
            ui.label("None wait for you.")
        for item in late:
            late_card(item)


def late_card(item: moved.LateView) -> None:
    store = state.store()
    with ui.card().classes("w-full p-3 gap-1").props(f'data-late="{item.change_id}"') as card:
        ui.label(f"{item.child_name}: a {item.kind} by {item.worker_name}, arrived {when(item.arrived_at)}").classes(
            "font-bold")
        ui.label(item.reason)
        message = ui.label().classes("text-red-800").props('role="alert"')

        async def decide(decision: str) -> None:
            try:
                await io_bound(moved.decide, store, current_worker(), item.change_id, decision)
            except (NotAllowed, SyncRefused) as refusal:
                message.text = str(refusal)
                return
            card.delete()
            ui.notify({"accepted": "Accepted.", "discarded": "Discarded.", "seen": "Noted."}[decision])

        with ui.row().classes("gap-2"):
            if item.outcome == "held":
                ui.button("Accept as theirs", on_click=lambda: decide("accepted")).mark("accept")
                ui.button("Discard", on_click=lambda: decide("discarded")).props("outline").mark("discard")
            else:
                ui.button("Noted", on_click=lambda: decide("seen")).mark("noted")


def register() -> None:
    ui.page("/devices", title="Devices · Seen")(devices_page)

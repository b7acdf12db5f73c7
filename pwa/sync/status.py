"""The sync status card: last synced, changes waiting, conflicts (with both values), and "Sync now".

Pages call `sync_status_card()`; app start-up (pwa/app.py) makes `sync_status_section` a section of the
settings screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.sync.client import Phase, client_for
from pwa.threads import io_bound
from storage.models import Worker
from storage.sync import conflicts as sync_conflicts
from storage.sync import node as sync_node


def _when(status: sync_node.SyncStatus) -> str:
    if status.last_synced_at is None:
        return "Never synced"
    return f"Last synced {status.last_synced_at.astimezone():%d %b %Y at %H:%M}"


def sync_status_card() -> None:
    """A card showing how sync stands on this node, with a button to sync at once."""
    with ui.card().classes("w-full").props('aria-label="Sync"'):
        ui.label("Sync").classes("text-lg font-bold").props('role="heading" aria-level="2"')
        sync_status_section(current_worker())


def set_aside_row(item: sync_node.SetAside, after: Callable[[], Awaitable[None]]) -> None:
    """One set-aside change: why, a link to its child's page to fix it, "Send again" and "Discard" (audited)."""
    store = state.store()
    with ui.card().classes("w-full p-2 gap-1").props(f'data-set-aside="{item.change_id}"'):
        ui.label(f"{item.kind.replace('_', ' ').capitalize()} written {item.written_at:%d %b %Y %H:%M}: {item.reason}"
                 ).classes("text-sm")

        async def again() -> None:
            await io_bound(sync_node.send_again, store, item.change_id)
            await after()

        async def discard() -> None:
            await io_bound(sync_node.discard_set_aside, store, current_worker().id, item.change_id)
            ui.notify("Discarded; the audit trail keeps that you did.")
            await after()

        with ui.row().classes("gap-2 items-center"):
            if item.child_id:
                ui.link("Fix it", f"/child/{item.child_id}").classes("text-primary")
            ui.button("Send again", on_click=again).props("flat dense")
            ui.button("Discard", on_click=discard).props("flat dense color=negative")


def sync_status_section(worker: Worker) -> None:
    """Last synced, changes waiting, refusals and conflicts (both values), and a "Sync now" button."""
    store = state.store()
    summary = ui.column().classes("gap-1")

    async def refresh() -> None:
        status = await io_bound(sync_node.sync_status, store)
        shown = await io_bound(sync_conflicts.visible_conflicts, store, worker)
        summary.clear()
        with summary:
            if not status.enrolled:
                ui.label("This device does not sync: it is the server, or not enrolled yet.")
            ui.label(_when(status)).props('data-testid="sync-last"')
            ui.label(f"{status.waiting} change{'s' if status.waiting != 1 else ''} waiting to sync")
            if status.refused:
                ui.label(f"{status.refused} change(s) the server would not take are kept on this device: fix or "
                         "discard each.").classes("text-negative")
                for aside in await io_bound(sync_node.set_aside, store):
                    set_aside_row(aside, refresh)
            if status.audit_refused:
                ui.label(f"{status.audit_refused} audit event(s) the server would not take are kept on this "
                         "device. Ask your manager.").classes("text-negative")
            if status.last_error:
                ui.label(status.last_error).classes("text-warning")
            ui.label(f"{len(shown)} conflict{'s' if len(shown) != 1 else ''}")
            for item in shown[:20]:
                field = item.conflict.field.removeprefix("body.").replace("_", " ")
                ui.label(f"{item.conflict.kind.replace('_', ' ')} {field}: kept “{item.winner}”, "
                         f"also written “{item.loser}”").classes("text-sm")

    async def sync_now() -> None:
        button.disable()
        try:
            report = await io_bound(client_for(store).sync_once)
        finally:
            button.enable()
        if report.phase == Phase.idle:
            ui.notify(f"Synced: {report.pushed} sent, {report.pulled} received.", type="positive")
        else:
            ui.notify(report.message or "Sync did not finish; Seen will try again.", type="warning")
        await refresh()

    button = ui.button("Sync now", icon="sync", on_click=sync_now).props('data-testid="sync-now"')
    ui.timer(0.1, refresh, once=True)

"""Administration: workers, teams and devices, and revoking a lost or stolen device.

Administrators only; the store refuses (and audits) anyone else. Nothing here opens a case record:
an administrator reads no child's records unless they also manage the child's team.
"""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import frame, when
from pwa.threads import io_bound
from storage import oversight
from storage.store import NotAllowed

ROLE_WORDS = {"practitioner": "Practitioner", "manager": "Manager", "admin": "Administrator"}


async def admin_page() -> None:
    worker = current_worker()
    store = state.store()
    try:
        view = await io_bound(oversight.admin_view, store, worker)
    except NotAllowed as refusal:
        with frame("Administration"):
            ui.label(str(refusal)).props('role="alert"')
        return
    with frame("Administration"):
        content = ui.column().classes("w-full gap-3")

        async def reload() -> None:
            show(await io_bound(oversight.admin_view, store, worker))

        async def revoke(device: oversight.DeviceRow) -> None:
            try:
                await io_bound(oversight.revoke_device, store, worker, device.id)
            except (oversight.OversightError, NotAllowed) as e:
                ui.notify(str(e), type="negative")
                return
            ui.notify(f"{device.worker}'s device \u201c{device.name or 'unnamed'}\u201d is revoked. "
                      "It will be told to wipe its data the next time it connects.")
            await reload()

        def confirm(device: oversight.DeviceRow) -> None:
            with ui.dialog() as dialog, ui.card().classes("max-w-sm"):
                title = ui.label(f"Revoke {device.worker}'s device \u201c{device.name or 'unnamed'}\u201d?").classes(
                    "font-bold").props('role="heading" aria-level="2"')
                dialog.props(f'aria-labelledby="c{title.id}"')  # a screen reader names the dialog by its question
                ui.label("It will no longer sync, and will wipe what it holds the next time it connects.")
                with ui.row().classes("w-full justify-end"):
                    ui.button("Cancel", on_click=dialog.close).props("flat")

                    async def go() -> None:
                        dialog.close()
                        await revoke(device)

                    ui.button("Revoke", on_click=go).props("color=negative").mark("confirm-revoke")
            dialog.open()

        def show(view: oversight.AdminView) -> None:
            content.clear()
            with content:
                ui.label("Devices").classes("text-lg font-bold").props('role="heading" aria-level="2"')
                if not view.devices:
                    ui.label("No devices are enrolled.")
                for device in view.devices:
                    with ui.card().classes("w-full p-3 gap-1").props(f'data-device="{device.id}"'):
                        ui.label(f"{device.worker}: {device.name or 'unnamed device'}").classes("font-bold")
                        ui.label(f"Enrolled {when(device.enrolled_at)}"
                                 + (f" · last seen {when(device.last_seen_at)}" if device.last_seen_at else ""))
                        if device.revoked_at:
                            ui.label(f"Revoked {when(device.revoked_at)}").classes("text-red-800 font-bold")
                        else:
                            ui.button("Revoke", icon="block", on_click=lambda d=device: confirm(d)).props(
                                "outline color=negative").classes("h-11")
                ui.label("Teams").classes("text-lg font-bold mt-2").props('role="heading" aria-level="2"')
                for team in view.teams:
                    with ui.card().classes("w-full p-3 gap-1"):
                        ui.label(team.name).classes("font-bold")
                        ui.label(f"Managed by {', '.join(team.managers) or 'nobody'} · {team.workers} "
                                 f"{'person' if team.workers == 1 else 'people'}")
                ui.label("Workers").classes("text-lg font-bold mt-2").props('role="heading" aria-level="2"')
                for w in view.workers:
                    with ui.card().classes("w-full p-3 gap-0"):
                        ui.label(f"{w.name} ({w.username})").classes("font-bold")
                        ui.label(f"{ROLE_WORDS.get(w.role, w.role)} · {w.team or 'no team'}"
                                 + ("" if w.active else " · no longer active"))

        show(view)


def register() -> None:
    ui.page("/admin", title="Administration · Seen")(admin_page)

"""The team dashboard's notice of sync in the field: devices with changes waiting too long, and edits for children
who moved that wait for the manager (storage/sync/behind.py). Both link to the "Devices" page."""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.threads import io_bound
from storage.models import Worker
from storage.sync.behind import field_notice
from storage.timescales.calendar import today_in_england


async def field_notice_section(manager: Worker) -> None:
    notice = await io_bound(field_notice, state.store(), manager, today_in_england())
    if not (notice.behind or notice.late_changes):
        return
    with ui.card().classes("w-full p-2").mark("field-notice"):
        if notice.behind:
            ui.label("Changes waiting on a device for more than a working day: " + "; ".join(notice.behind)
                     ).classes("text-orange-950")
        if notice.late_changes:
            ui.label(f"{notice.late_changes} edit(s) arrived for children who had moved: they wait for you."
                     ).classes("text-orange-950")
        ui.link("See the devices", "/devices").classes("font-bold text-primary")

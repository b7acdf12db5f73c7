"""A child's audit trail: who read or changed which of the child's records, when, from which device.

For the child's team manager, or an administrator (who sees the trail but not the child's name: an
admin reads no case records). The store refuses, and audits, anyone else.
"""

from __future__ import annotations

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.layout import frame
from pwa.pages.signoff import when
from pwa.threads import io_bound
from storage import oversight
from storage.store import NotAllowed

ACTION_WORDS = {
    "read": "Read", "create": "Created", "update": "Changed", "submit": "Submitted", "sign_off": "Signed off",
    "return": "Returned to the worker", "allocate": "Moved to another worker", "denied": "Refused access to",
    "revoke": "Revoked",
}
KIND_WORDS = {
    "child": "child's details", "placement": "placement", "visit": "visit", "wishes_and_feelings":
    "wishes and feelings", "life_story": "life-story entry", "photo": "photo", "care_plan": "care plan",
    "care_plan_action": "care plan action", "review": "review", "missing_episode": "missing episode",
    "audit_trail": "audit trail",
}


async def audit_page(child_id: str) -> None:
    worker = current_worker()
    try:
        trail = await io_bound(oversight.audit_trail, state.store(), worker, child_id)
    except NotAllowed:
        with frame("Audit trail", back="/"):
            ui.label("Not found: that child is not in a team you manage, or does not exist.").props('role="alert"')
        return
    with frame("Audit trail", back="/team" if trail.child_name else "/admin"):
        ui.label(trail.child_name or f"Child {trail.child_id[:8]}").classes("text-xl font-bold")
        ui.label(f"{len(trail.events)} events, newest first. The trail is append-only: "
                 "`seen audit verify` checks that no event was changed or removed.").classes("text-sm")
        for event in trail.events:
            with ui.row().classes("w-full gap-x-2 gap-y-0 border-b py-1 items-baseline").props(
                    f'data-seq="{event.seq}"'):
                ui.label(when(event.at)).classes("text-sm text-gray-800 w-40")
                ui.label(f"{event.who}: {ACTION_WORDS.get(event.action, event.action)} "
                         f"{KIND_WORDS.get(event.kind, event.kind)} {event.record_id[:8]}").classes("grow")
                extra = []
                if event.detail:
                    extra.append(event.detail)
                if event.received_at is not None:  # the device's word for when it happened: shown as such
                    extra.append(f"backdated: the device sent it {when(event.received_at)}")
                if event.device_id and event.device_id.startswith("web-"):
                    extra.append(f"in the web app, browser {event.device_id[4:10]}")
                elif event.device_id:
                    extra.append(f"device {event.device_id[:8]}")
                if extra:
                    ui.label(" · ".join(extra)).classes("text-xs text-gray-700 w-full")


def register() -> None:
    ui.page("/child/{child_id}/audit", title="Audit trail · Seen")(audit_page)

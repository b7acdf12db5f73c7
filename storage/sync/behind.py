"""Nobody falls behind unseen: what each device still holds, reported as it syncs; each worker's devices for their
manager's "Devices" page; and the alert to a worker whose device has had changes waiting too long.

A device reports, on the first page of every pull (that is, after it has pushed), how many changes it still
holds (waiting, set aside, conflicts undecided) and when the oldest of them was written. The server keeps that on
the device's row. A device with changes held longer than `waiting_limit()` working days (`SEEN_WAITING_WORKING_DAYS`,
default 1) makes an alert for its worker (storage/notify.py sends it), and the team dashboard names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from storage.config import settings
from storage.hot import Hot
from storage.models import Child, Device, LateChange, Role, Worker, table_of, utcnow
from storage.store import Store
from storage.sync.changes import aware
from storage.timescales.calendar import LONDON, add_working_days

_DEVICE = table_of(Device)
_REPORT = Hot(update(_DEVICE).where(_DEVICE.c.id == bindparam("device_id")).values(
    last_sync_at=bindparam("now"), waiting=bindparam("waiting"), set_aside=bindparam("set_aside"),
    conflicts=bindparam("conflicts"), waiting_since=bindparam("waiting_since")))


def waiting_limit() -> int:
    """How many working days a device may hold changes before its worker is alerted (at least one)."""
    try:
        return max(1, settings().waiting_working_days)
    except ValueError:  # a setting that is not a number: the default
        return 1


def record_holds(session: Session, device_id: str, holds: dict[str, Any]) -> None:
    """What a device said it still holds, as it synced."""
    held = holds.get("waiting_since")
    _REPORT.rows(session, {"device_id": device_id, "now": utcnow(), "waiting": int(holds.get("waiting") or 0),
                           "set_aside": int(holds.get("set_aside") or 0),
                           "conflicts": int(holds.get("conflicts") or 0),
                           "waiting_since": aware(held) if isinstance(held, datetime) else None})


def overdue_since(device: Device, today: date, limit: int | None = None) -> date | None:
    """The day a device's changes began waiting, if that is more than `limit` working days before `today`."""
    if not (device.waiting or device.set_aside) or device.waiting_since is None or device.revoked_at is not None:
        return None
    since = aware(device.waiting_since).astimezone(LONDON).date()
    return since if add_working_days(since, limit or waiting_limit()) < today else None


@dataclass
class DeviceRow:
    """One device as the "Devices" page shows it."""

    device: Device
    worker: Worker
    behind_since: date | None  # changes waiting since this day, longer than the limit


def team_devices(store: Store, manager: Worker, today: date) -> list[DeviceRow]:
    """The devices of every worker in the teams this manager manages (their own too), by worker."""
    with store.session() as session:
        store.require_role(session, manager, Role.manager.value, what="/devices")
        teams = store.managed_team_ids(session, manager)
        rows = session.exec(select(Device, Worker).where(Device.worker_id == Worker.id).where(
            col(Worker.team_id).in_(sorted(teams)) | (Worker.id == manager.id))
            .order_by(col(Worker.display_name), col(Device.enrolled_at)))
        return [DeviceRow(d, w, overdue_since(d, today)) for d, w in rows]


def waiting_alerts(session: Session, workers: dict[str, Worker], today: date) -> list[tuple[Worker, date]]:
    """(worker, since) for each active worker with a device holding changes longer than the limit."""
    found: dict[str, date] = {}
    for device in session.exec(select(Device).where(col(Device.revoked_at).is_(None),
                                                    col(Device.waiting_since).is_not(None))):
        since = overdue_since(device, today)
        if since is not None and device.worker_id in workers:
            found[device.worker_id] = min(since, found.get(device.worker_id, since))
    return [(workers[w], since) for w, since in sorted(found.items())]


def late_changes_waiting(session: Session, team_ids: set[str]) -> list[LateChange]:
    """Late changes (for a child who moved) a manager of these teams has not dealt with yet, oldest first."""
    return list(session.exec(select(LateChange).join(Child, col(Child.id) == LateChange.child_id)
                             .where(col(Child.team_id).in_(sorted(team_ids)), LateChange.decision == "")
                             .order_by(col(LateChange.arrived_at))))


@dataclass
class FieldNotice:
    """What the team dashboard says about sync in the field: workers whose devices are behind, edits waiting."""

    behind: list[str]  # "Ben's laptop (since 3 Dec 2026)"
    late_changes: int  # edits for children who moved, not yet dealt with


def field_notice(store: Store, manager: Worker, today: date) -> FieldNotice:
    rows = team_devices(store, manager, today)
    with store.session() as session:
        late = late_changes_waiting(session, store.managed_team_ids(session, manager))
    return FieldNotice([f"{r.worker.display_name}'s {r.device.name} (since {r.behind_since:%-d %b %Y})"
                        for r in rows if r.behind_since is not None], len(late))


def late_changes_by_team(session: Session) -> list[tuple[str, LateChange]]:
    """Every late change no manager has dealt with yet, with its child's team: its managers are alerted."""
    return [(team_id, late) for late, team_id in session.exec(
        select(LateChange, Child.team_id).join(Child, col(Child.id) == LateChange.child_id)
        .where(LateChange.decision == "").order_by(col(LateChange.arrived_at)))]

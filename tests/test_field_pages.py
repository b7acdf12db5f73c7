"""The manager's "Devices" page and the dashboard's notice of devices behind (issue 19), as a manager meets them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from nicegui.testing.user import User
from sqlmodel import select

from pwa.layout import menu_entries
from storage.models import AuditEvent, CarePlanAction, Child, Conflict, Device, LateChange, Worker, utcnow
from storage.store import Store
from storage.sync import devices
from tests.conftest import sign_in


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def behind_device_and_a_held_change(store: Store) -> tuple[str, str]:
    ben, amara = worker(store, "ben"), worker(store, "amara")
    device, _worker, _token = devices.enrol_device(
        store, devices.issue_enrolment_code(store, ben.id, amara.id), "Ben's phone")
    change_id = str(uuid.uuid4())
    with store.session() as session:
        row = session.get(Device, device.id)
        row.last_sync_at, row.waiting, row.set_aside = utcnow(), 2, 1
        row.waiting_since = utcnow() - timedelta(days=30)  # far more than a working day, whatever today is
        session.add(row)
        child = session.exec(select(Child).where(Child.worker_id == ben.id)).first()
        late = LateChange(change_id=change_id, child_id=child.id, worker_id=ben.id, device_id=device.id, kind="visit",
                          record_id=str(uuid.uuid4()), outcome="held",
                          reason="Written after the child's move to another worker, so it is held.")
        late.sealed = store.seal_payload("late_change", change_id, {"change_id": change_id})
        session.add(late)
    return device.id, change_id


async def test_a_manager_sees_each_devices_report_and_deals_with_a_held_change(user: User, app_store: Store):
    _device_id, change_id = behind_device_and_a_held_change(app_store)
    await sign_in(user, "amara")
    assert {("Devices", "/devices"), ("Conflicts", "/conflicts")} <= set(menu_entries(worker(app_store, "amara")))
    await user.open("/team")
    await user.should_see("Changes waiting on a device for more than a working day", retries=50)
    await user.should_see("1 edit(s) arrived for children who had moved")
    await user.open("/devices")
    await user.should_see("Written after the child's move to another worker", retries=50)
    await user.should_see(": Ben's phone")
    await user.should_see("2 waiting · 1 set aside · 0 conflicts")
    await user.should_see("Behind since")
    user.find(marker="discard").click()
    await user.should_see("Discarded.", retries=50)
    amara = worker(app_store, "amara")
    with app_store.session() as session:
        late = session.get(LateChange, change_id)
        assert late.decision == "discarded" and late.decided_by == amara.id
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "decide",
                                                     AuditEvent.record_id == change_id)).first() is not None


async def test_a_worker_cannot_open_the_devices_page(user: User, app_store: Store):
    await sign_in(user, "ben")
    await user.open("/devices")
    await user.should_see("This page is for team managers.", retries=50)


async def test_a_manager_decides_a_conflict_shown_side_by_side_and_the_childs_page_says_so_until_then(
        user: User, app_store: Store):
    ben = worker(app_store, "ben")
    with app_store.session() as session:
        child = session.exec(select(Child).where(Child.worker_id == ben.id)).first()
        action = session.exec(select(CarePlanAction).where(CarePlanAction.child_id == child.id)).first()
        conflict = Conflict(id=str(uuid.uuid4()), kind="care_plan_action", record_id=action.id, child_id=child.id,
                            field="body.outcome", winner_clock="001796517275924-000000-a",
                            loser_clock="001796517275000-000000-b")
        conflict.sealed = app_store.seal_payload("conflict", conflict.id, {"winner": "Contact paused",
                                                                            "loser": "Contact on Saturdays"})
        session.add(conflict)
    await sign_in(user, "amara")
    await user.open(f"/child/{child.id}")
    await user.should_see("wait for a manager's decision: care plan action: outcome", retries=50)
    await user.open("/conflicts")
    await user.should_see("Contact paused", retries=50)
    await user.should_see("Contact on Saturdays")
    user.find(marker="keep-winner").click()
    await user.should_see("Decided.", retries=50)
    with app_store.session() as session:
        decided = session.get(Conflict, conflict.id)
        assert decided.resolved_at is not None and decided.kept == "winner"
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "decide",
                                                     AuditEvent.record_id == conflict.id)).first() is not None
    await user.open(f"/child/{child.id}")
    await user.should_not_see("wait for a manager's decision", retries=50)

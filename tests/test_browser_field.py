"""The manager's screens for sync in the field (issue 19) in a real browser at a phone's size: the dashboard's
notice of a device behind, the "Devices" page with a held edit, and a conflict to decide. Each passes axe-core
and the screen checks every screen passes (tests/browser_support.check_screen)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from storage.models import CarePlanAction, Child, Conflict, Device, LateChange, Worker, utcnow
from tests.browser_support import LiveServer, check_screen, sign_in

pytestmark = pytest.mark.browser


def field_work(server: LiveServer) -> str:
    """A device of ben's behind for a month, an edit held for a child who moved, and a conflict on ben's child."""
    store = server.store()
    try:
        with store.session() as session:
            ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
            device = Device(worker_id=ben.id, name="Ben's phone", token_hash="test-field-device",
                            last_sync_at=utcnow(), waiting=3, set_aside=1,
                            waiting_since=utcnow() - timedelta(days=30))
            session.add(device)
            child = session.exec(select(Child).where(Child.worker_id == ben.id)).first()
            action = session.exec(select(CarePlanAction).where(CarePlanAction.child_id == child.id)).first()
            late = LateChange(change_id=str(uuid.uuid4()), child_id=child.id, worker_id=ben.id, device_id=device.id,
                              kind="visit", record_id=str(uuid.uuid4()), outcome="held",
                              reason="Written after the child's move to another worker, so it is held.")
            late.sealed = store.seal_payload("late_change", late.change_id, {"change_id": late.change_id})
            conflict = Conflict(id=str(uuid.uuid4()), kind="care_plan_action", record_id=action.id,
                                child_id=child.id, field="body.outcome", winner_clock="001796517275924-000000-a",
                                loser_clock="001796517275000-000000-b")
            conflict.sealed = store.seal_payload("conflict", conflict.id, {"winner": "Contact paused",
                                                                           "loser": "Contact on Saturdays"})
            session.add(late)
            session.add(conflict)
            return child.id
    finally:
        store.engine.dispose()


def test_a_managers_field_screens_pass_the_screen_checks(page, live_server: LiveServer) -> None:
    child_id = field_work(live_server)
    sign_in(page, "amara")
    page.get_by_text("Changes waiting on a device for more than a working day").wait_for()
    check_screen(page, "a11y-field-team-notice")
    page.goto("/devices")
    page.get_by_text("Written after the child's move to another worker").wait_for()
    check_screen(page, "a11y-field-devices")
    page.goto("/conflicts")
    page.get_by_text("Contact on Saturdays").wait_for()
    check_screen(page, "a11y-field-conflicts")
    page.goto(f"/child/{child_id}")
    page.get_by_text("wait for a manager's decision").wait_for()
    check_screen(page, "a11y-field-child-undecided")

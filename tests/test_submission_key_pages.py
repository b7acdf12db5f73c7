"""Screens send the key their form was opened with: a second tap, however late, stores nothing more and says
nothing is wrong (pwa/form_key.py, storage/submissions.py)."""

from __future__ import annotations

import asyncio

from nicegui.testing import User
from sqlmodel import col, select

from storage.models import AuditEvent, Child, RecordStatus, Visit, WishesAndFeelings, Worker
from storage.store import Store
from tests.conftest import sign_in


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def bens_child(store: Store) -> str:
    ben = worker(store, "ben")
    with store.session() as session:
        return session.exec(select(Child.id).where(Child.worker_id == ben.id, Child.category == "cic")
                            .order_by(col(Child.id))).first()


async def test_a_second_tap_after_wishes_are_saved_answers_with_the_same_record(user: User, app_store: Store) -> None:
    child_id = bens_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}/wishes")
    await user.should_see("Earlier work", retries=50)
    user.find(marker="child_words").type("I want a dog called Pickle")
    user.find(marker="submit").click()
    await user.should_see("Saved. The record is now sealed", retries=50)
    user.find(marker="submit").click()  # the emptied form, tapped again
    await user.should_see("Saved. The record is now sealed", retries=50)
    await user.should_not_see("Nothing was saved yet")
    with app_store.session() as session:
        rows = [r for r in session.exec(select(WishesAndFeelings).where(WishesAndFeelings.child_id == child_id))
                if app_store.opened(r).body.child_words == "I want a dog called Pickle"]
    assert len(rows) == 1 and rows[0].submission_key
    # Written again, it is a new piece of work, stored as one.
    user.find(marker="child_words").type("Or a cat.")
    user.find(marker="submit").click()
    for _ in range(100):
        with app_store.session() as session:
            keys = {r.submission_key for r in session.exec(select(WishesAndFeelings).where(
                WishesAndFeelings.child_id == child_id, col(WishesAndFeelings.submission_key).is_not(None)))}
        if len(keys) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(keys) == 2


async def test_sign_off_tapped_twice_signs_off_once_without_a_refusal(user: User, app_store: Store) -> None:
    amara = worker(app_store, "amara")
    with app_store.session() as session:
        teams = app_store.managed_team_ids(session, amara)
        visit = session.exec(select(Visit).join(Child).where(
            Visit.status == RecordStatus.submitted.value, col(Child.team_id).in_(teams))).first()
    await sign_in(user, "amara")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/signoff/{visit.id}")
    await user.should_see("Observations (what was seen and heard)", retries=50)
    user.find("Management oversight note").type("Agreed.")
    user.find("Sign off").click()
    user.find("Sign off").click()
    await user.should_see("Visit signed off", retries=50)
    await user.should_not_see("already been signed off")
    with app_store.session() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.record_id == visit.id,
                                                       AuditEvent.action == "sign_off")).all()
        assert len(events) == 1
        assert session.get(Visit, visit.id).status == RecordStatus.signed_off.value

"""Web sign-in: wrong passwords are throttled per account and per client address, with a growing wait, and
every failure is in the audit trail with the username tried; on the real app and the real databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nicegui.testing import User
from sqlmodel import col, select

from storage import sign_in as sign_in_module
from storage.demo import DEMO_PASSWORD
from storage.models import AuditEvent, utcnow
from storage.sign_in import SignInRefused, sign_in
from storage.store import Store
from tests.conftest import DEMO_DAY
from tests.conftest import sign_in as sign_in_page

ADDRESS = "203.0.113.9"


def sign_in_events(store: Store) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).where(col(AuditEvent.kind).in_(["sign_in", "worker"]))
                                 .order_by(col(AuditEvent.seq))))


def test_wrong_passwords_lock_the_account_for_a_growing_while_and_each_try_is_audited(demo_store: Store) -> None:
    store = demo_store
    now = utcnow()
    for n in range(sign_in_module.ACCOUNT_FREE):
        with pytest.raises(SignInRefused, match="do not match") as refused:
            sign_in(store, "ben", f"guess-{n}", ADDRESS, now=now)
    assert "Too many tries" in str(refused.value)  # the fifth: the account is now locked for a minute
    # Locked: even the right password is not checked, and says how long to wait.
    with pytest.raises(SignInRefused, match="Too many failed sign-ins for this account. Wait 30 seconds"):
        sign_in(store, "Ben ", DEMO_PASSWORD, ADDRESS, now=now + timedelta(seconds=30))
    # After the wait, another wrong one locks it for twice as long.
    with pytest.raises(SignInRefused):
        sign_in(store, "ben", "guess-again", ADDRESS, now=now + timedelta(seconds=61))
    with pytest.raises(SignInRefused, match="Wait 2 minutes"):
        sign_in(store, "ben", DEMO_PASSWORD, ADDRESS, now=now + timedelta(seconds=62))
    worker = sign_in(store, "ben", DEMO_PASSWORD, ADDRESS, now=now + timedelta(seconds=61 + 121))
    assert worker.username == "ben"
    # A right password clears the account's count: one wrong try is not a lock.
    with pytest.raises(SignInRefused) as refused:
        sign_in(store, "ben", "typo", ADDRESS, now=now + timedelta(seconds=200))
    assert "Too many" not in str(refused.value)

    events = sign_in_events(store)
    denied = [e for e in events if e.action == "denied"]
    assert [e.record_id for e in denied] == ["ben"] * 9
    assert [e.detail for e in denied].count(f"wrong password from {ADDRESS}") == 7
    assert [e.detail for e in denied].count(f"locked, tried again from {ADDRESS}") == 2
    assert [e.action for e in events if e.kind == "worker"] == ["sign_in"]
    with pytest.raises(SignInRefused):
        sign_in(store, "nobody-here", "x", ADDRESS, now=now)
    assert sign_in_events(store)[-1].record_id == "nobody-here"
    assert sign_in_events(store)[-1].detail == f"unknown username from {ADDRESS}"


def test_many_usernames_tried_from_one_address_lock_that_address(demo_store: Store) -> None:
    store = demo_store
    now = utcnow()
    for n in range(sign_in_module.ADDRESS_FREE):
        with pytest.raises(SignInRefused):
            sign_in(store, f"user{n}", "password", ADDRESS, now=now)
    with pytest.raises(SignInRefused, match="for this network address"):
        sign_in(store, "chloe", DEMO_PASSWORD, ADDRESS, now=now)
    assert sign_in(store, "chloe", DEMO_PASSWORD, "198.51.100.7", now=now).username == "chloe"  # elsewhere: fine
    assert sign_in(store, "chloe", DEMO_PASSWORD, ADDRESS, now=now + timedelta(seconds=61)).username == "chloe"


async def test_the_sign_in_page_says_why_and_how_long(user: User, app_store: Store) -> None:
    for _ in range(sign_in_module.ACCOUNT_FREE):
        await sign_in_page(user, "erin", "not-her-password", wait=False)
        await user.should_see("That username and password do not match", retries=100)
    await sign_in_page(user, "erin", wait=False)
    await user.should_see("Too many failed sign-ins for this account. Wait", retries=100)
    await user.should_not_see("My caseload")
    assert sign_in_events(app_store)[-1].detail.startswith("locked, tried again")
    assert DEMO_DAY  # the demo's day: nothing here depends on the date

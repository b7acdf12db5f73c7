"""The manager's Returns page: per child, what the statutory returns would reject now, in words."""

from __future__ import annotations

from nicegui.testing.user import User
from sqlmodel import select

from storage.models import AuditEvent, Child, Review, ReviewBody, Worker
from storage.store import Store
from storage.timescales.calendar import today_in_england
from tests.conftest import sign_in


async def test_a_manager_sees_what_would_fail_the_returns_and_a_worker_is_refused(user: User,
                                                                                  app_store: Store) -> None:
    await sign_in(user, "amara")
    await user.open("/team")
    await user.should_see("Returns", retries=50)  # in the manager's menu
    await user.open("/returns")
    await user.should_see(marker="returns-clear", retries=50)  # the demo's records would all pass

    with app_store.session() as session:
        amara = session.exec(select(Worker).where(Worker.username == "amara")).one()
        child = session.exec(select(Child).where(Child.team_id == amara.team_id, Child.category == "cic")
                             .order_by(Child.id)).first()
        assert child is not None
        app_store.write(session, Review(id="no-code", child_id=child.id, kind="cic_review",
                                        held_on=today_in_england()), ReviewBody(), action="create")
        name = app_store.opened(child).body.first_name
    await user.open("/returns")
    await user.should_see("This review has no participation code; the SSDA903 return will reject it.", retries=50)
    await user.should_see(name, retries=5)
    await user.should_see("1 thing would fail the statutory returns now, for 1 child.")

    await user.open("/logout")
    await sign_in(user, "ben")
    await user.open("/returns")
    await user.should_see("This page is for team managers.", retries=50)
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "denied", AuditEvent.worker_id == ben.id,
                                                     AuditEvent.record_id == "/returns")).first() is not None

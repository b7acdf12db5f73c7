"""The manager's Returns page: per child, what the statutory returns would reject now, in words."""

from __future__ import annotations

from datetime import timedelta

from nicegui.testing.user import User
from sqlmodel import select

from storage.models import AuditEvent, Child, MissingEpisode, Review, ReviewBody, Worker
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


async def test_the_missing_form_records_away_not_missing_and_the_interview_accepted(user: User,
                                                                                    app_store: Store) -> None:
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        taken = set(session.exec(select(MissingEpisode.child_id)))
        child = next(c for c in session.exec(select(Child).where(Child.worker_id == ben.id,
                                                                 Child.category == "cic").order_by(Child.id))
                     if c.id not in taken)
    today = today_in_england()
    await sign_in(user, "ben")
    await user.open(f"/child/{child.id}")
    await user.should_see("Missing episodes", retries=50)
    user.find(marker="missing-start").type((today - timedelta(days=3)).isoformat())
    user.find(marker="missing-end").type((today - timedelta(days=2)).isoformat())
    user.find(marker="missing-offered_on").type((today - timedelta(days=1)).isoformat())
    user.find(marker="missing-absent").click()
    user.find(marker="missing-accepted").elements.pop().value = "yes"
    user.find(marker="missing-save").click()
    await user.should_see(f"Away without permission from {today - timedelta(days=3):%-d %B %Y}", retries=100)
    with app_store.session() as session:
        episode = session.exec(select(MissingEpisode).where(MissingEpisode.child_id == child.id)).one()
        assert episode.absent is True and episode.interview_accepted is True

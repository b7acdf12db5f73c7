"""The child page's review and placement forms: the returns' rules speak in words as the worker records, a
warning is saved once confirmed, and the manager's Returns page then lists it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from nicegui.testing.user import User
from sqlmodel import col, select

from storage.child_view import child_view
from storage.models import Child, Placement, Review, Worker
from storage.returns.common import age_on
from storage.store import Store
from storage.timescales.calendar import today_in_england
from tests.conftest import sign_in


def bens_child_in_care(store: Store, nth: int = 0) -> tuple[Worker, Child]:
    today = today_in_england()
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        children = [c for c in session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic")
                                            .order_by(Child.id))
                    if (age_on(store.opened(c).body.date_of_birth, today) or 0) >= 4]
    return ben, children[nth]


def choose(user: User, marker: str, value: str) -> None:
    user.find(marker=marker).elements.pop().value = value


async def test_a_review_recorded_on_the_child_page_speaks_and_moves_the_due_date(user: User,
                                                                                 app_store: Store) -> None:
    ben, child = bens_child_in_care(app_store)
    today = today_in_england()
    before = next(c.due for c in child_view(app_store, ben, child.id).clocks if c.clock == "cic_review")
    await sign_in(user, "ben")
    await user.open(f"/child/{child.id}")
    await user.should_see("Record a review", retries=50)
    choose(user, "review-kind", "cic_review")
    user.find(marker="review-held_on").type(today.isoformat())
    user.find(marker="review-save").click()
    await user.should_see("This review has no participation code; the SSDA903 return will reject it.", retries=100)
    with app_store.session() as session:
        assert session.exec(select(Review).where(Review.child_id == child.id, Review.held_on == today)).first() is None

    choose(user, "review-participation", "PN0")  # the child is four or more: refused
    user.find(marker="review-save").click()
    await user.should_see("This review says the child was under four (PN0)", retries=100)

    choose(user, "review-participation", "")
    user.find(marker="review-save").click()
    await user.should_see(marker="review-returns_confirmed", retries=100)  # asked: save it anyway?
    user.find(marker="review-returns_confirmed").click()  # saved, to be put right before the return
    user.find(marker="review-save").click()
    await user.should_see("Review saved", retries=100)
    with app_store.session() as session:
        saved = session.exec(select(Review).where(Review.child_id == child.id, Review.held_on == today)).one()
        assert saved.participation is None and saved.submission_key
    after = next(c.due for c in child_view(app_store, ben, child.id).clocks if c.clock == "cic_review")
    assert after > before
    await user.should_see(f"Due {after:%-d %B %Y}", retries=50)

    await user.open("/logout")
    await sign_in(user, "amara")
    await user.open("/returns")
    await user.should_see("This review has no participation code; the SSDA903 return will reject it.", retries=50)


async def test_a_placement_ended_and_started_on_the_child_page(user: User, app_store: Store) -> None:
    ben, child = bens_child_in_care(app_store, 1)
    today = today_in_england()
    with app_store.session() as session:
        current = session.exec(select(Placement).where(Placement.child_id == child.id,
                                                       col(Placement.end).is_(None))).one()
    await sign_in(user, "ben")
    await user.open(f"/child/{child.id}")
    await user.should_see("Start or end a placement", retries=50)
    choose(user, "placement-action", "end")
    user.find(marker="placement-end").type((current.start - timedelta(days=1)).isoformat())
    user.find(marker="placement-save").click()
    await user.should_see("before it starts", retries=100)
    user.find(marker="placement-end").clear().type((today - timedelta(days=2)).isoformat())
    choose(user, "placement-change_reason", "CARPL")
    user.find(marker="placement-save").click()
    await user.should_see("Placement saved", retries=100)

    await user.open(f"/child/{child.id}")
    await user.should_see("Start or end a placement", retries=50)
    choose(user, "placement-action", "start")
    choose(user, "placement-placement_type", "U6")
    user.find(marker="placement-start").type((today - timedelta(days=2)).isoformat())
    choose(user, "placement-provider_code", "PR4")
    user.find(marker="placement-save").click()
    await user.should_see("This placement has no Ofsted URN", retries=100)
    user.find(marker="placement-urn").type("SC777777")
    user.find(marker="placement-save").click()
    # The page opens again on the new placement (the notice "Placement saved" was seen once already).
    await user.should_see("U6 – Foster placement with other foster carer, not long term or FFA/concurrent",
                          retries=100)
    with app_store.session() as session:
        placements = session.exec(select(Placement).where(Placement.child_id == child.id)
                                  .order_by(col(Placement.start).desc())).all()
    assert (placements[0].placement_type, placements[0].urn, placements[0].provider_code) == ("U6", "SC777777", "PR4")
    assert (placements[1].id, placements[1].change_reason) == (current.id, "CARPL")


async def test_a_review_saved_with_two_taps_is_one_review(user: User, app_store: Store) -> None:
    _, child = bens_child_in_care(app_store, 2)
    today = today_in_england()
    await sign_in(user, "ben")
    await user.open(f"/child/{child.id}")
    await user.should_see("Record a review", retries=50)
    choose(user, "review-kind", "cic_review")
    user.find(marker="review-held_on").type(today.isoformat())
    choose(user, "review-participation", "PN1")
    user.find(marker="review-save").click()
    user.find(marker="review-save").click()  # the second tap, before the page moves on
    await user.should_see("Review saved", retries=100)
    for _ in range(40):  # both taps answered
        await asyncio.sleep(0.05)
    with app_store.session() as session:
        held = session.exec(select(Review).where(Review.child_id == child.id, Review.held_on == today)).all()
    assert len(held) == 1 and held[0].participation == "PN1"

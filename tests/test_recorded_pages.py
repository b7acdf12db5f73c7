"""Dates that cannot be right and confirmations, as a worker meets them (NiceGUI's simulated user): a visit dated
before the child's birth is refused naming it, one before the case opened is confirmed with one tap, and every
save lands on a confirmation saying what was kept and when the child's next visit is due, and why."""

from __future__ import annotations

from datetime import date, timedelta

from nicegui import ui
from nicegui.testing.user import User
from sqlmodel import col, select

from storage.models import (
    AuditEvent,
    CarePlan,
    CarePlanAction,
    Child,
    RecordStatus,
    Visit,
    WishesAndFeelings,
    Worker,
)
from storage.record_dates import case_dates, shown
from storage.store import Store
from storage.visits import blank_form, submit_visit
from tests.conftest import sign_in
from tests.test_worker_pages import choose, field, open_visit


def ben_child(store: Store) -> tuple[Child, str]:
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        child = session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic")
                             .order_by(Child.id)).first()
        return child, store.opened(child).body.name


def fill_visit(user: User, day: str) -> None:
    field(user, "visit_date").clear()
    field(user, "visit_date").type(day)
    choose(user, "seen_alone", "Yes")
    choose(user, "bedroom_seen", "Yes")
    field(user, "observations").type("Room tidy.")
    field(user, "child_words").type("I like it here.")


def visits_of(store: Store, child_id: str) -> list[Visit]:
    with store.session() as session:
        return list(session.exec(select(Visit).where(Visit.child_id == child_id).order_by(col(Visit.visited_at))))


async def test_a_visit_before_birth_is_refused_naming_the_date_of_birth(user: User, app_store: Store) -> None:
    child, _ = ben_child(app_store)
    born = case_dates(app_store, child).born
    assert born is not None
    before = len(visits_of(app_store, child.id))
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child.id)
    # The date picker offers nothing before birth and nothing after today.
    (picker,) = field(user, "visit_date").elements
    assert picker.props["min"] == born.isoformat() and "max" in picker.props
    fill_visit(user, "1995-01-01")
    user.find(marker="submit").click()
    await user.should_see(f"is before the child's date of birth ({shown(born)})", retries=50)
    await user.should_not_see(marker="confirm-date")  # a date before birth is refused, not asked about
    assert len(visits_of(app_store, child.id)) == before
    with app_store.session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "denied", AuditEvent.kind == "visit",
                                                     AuditEvent.child_id == child.id)).first() is not None


async def test_a_visit_before_the_case_opened_is_confirmed_then_recorded(user: User, app_store: Store) -> None:
    child, name = ben_child(app_store)
    case = case_dates(app_store, child)
    assert case.opened is not None and case.born is not None
    day = case.opened - timedelta(days=30)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child.id)
    fill_visit(user, day.isoformat())
    user.find(marker="submit").click()
    await user.should_see("is before the case opened", retries=50)
    assert all(v.visited_at.date() != day for v in visits_of(app_store, child.id))
    user.find(marker="confirm-date").click()
    await user.should_see("Visit recorded", retries=50)
    await user.should_see(f"{day:%-d %b %Y}")
    assert any(v.visited_at.date() == day for v in visits_of(app_store, child.id))


async def test_after_a_visit_the_worker_is_told_what_was_saved_and_when_the_next_is_due(
        user: User, app_store: Store) -> None:
    child, name = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await open_visit(user, child.id)
    (picker,) = field(user, "visit_date").elements
    day = picker.value  # dated now, as a new visit opens
    choose(user, "seen_alone", "Yes")
    choose(user, "bedroom_seen", "Yes")
    field(user, "observations").type("Room tidy.")
    field(user, "child_words").type("I like it here.")
    user.find(marker="submit").click()
    await user.should_see("Visit recorded", retries=50)
    await user.should_see(f"for {name}")
    await user.should_see("Seen alone")
    await user.should_see("It is waiting for your manager's sign-off.")
    await user.should_see(marker="next-due")
    (due,) = user.find(marker="next-due").elements
    (why,) = user.find(marker="next-due-rule").elements
    assert due.text.startswith("Next visit due: ")
    assert shown(date.fromisoformat(day)) in why.text  # the rule counts from the visit just recorded
    await user.should_see(f"Back to {name}'s page")
    user.find(f"Back to {name}'s page").click()
    await user.should_see("Visit: seen alone", retries=50)


async def test_after_wishes_and_feelings_the_worker_lands_on_a_confirmation(user: User, app_store: Store) -> None:
    child, name = ben_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child.id}/wishes")
    await user.should_see(marker="child_words", retries=50)
    user.find(marker="child_words").type("I want to see my nan more.")
    user.find(marker="submit").click()
    await user.should_see("Wishes and feelings saved", retries=50)  # above the form, which stays open
    await user.should_see("What happens next")
    (due,) = user.find(marker="next-due").elements
    assert due.text.startswith("Next visit due: ")
    await user.should_see(f"Back to {name}'s page")
    with app_store.session() as session:
        assert session.exec(select(WishesAndFeelings).where(WishesAndFeelings.child_id == child.id)).first()


async def test_after_a_sign_off_the_manager_is_told_what_and_sees_the_next_in_the_queue(
        user: User, app_store: Store) -> None:
    # Two visits waiting at least: a visit Ben submits now joins whatever the demo left in the queue.
    child, _ = ben_child(app_store)
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
    form = blank_form()
    form.update(seen_alone="yes", bedroom_seen="yes", observations="Room tidy.", child_words="Fine.")
    submit_visit(app_store, ben, child.id, form)
    with app_store.session() as session:
        amara = session.exec(select(Worker).where(Worker.username == "amara")).one()
        teams = app_store.managed_team_ids(session, amara)
        waiting = list(session.exec(select(Visit).join(Child).where(
            Visit.status == RecordStatus.submitted.value, col(Child.team_id).in_(teams)).order_by(
            col(Visit.submitted_at), col(Visit.visited_at))))
    assert len(waiting) >= 2
    first, second = waiting[0], waiting[1]
    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open(f"/signoff/{first.id}")
    await user.should_see("Observations (what was seen and heard)", retries=50)
    user.find("Management oversight note").type("Good analysis.")
    user.find("Sign off").click()
    await user.should_see("Visit signed off", retries=50)
    await user.should_see("Signed-off records cannot be changed.")
    await user.should_see(f"{len(waiting) - 1} visit")
    links = [e for e in user.find(kind=ui.link).elements if e.props.get("href") == f"/signoff/{second.id}"]
    assert links and links[0].text.startswith("Read next: ")


async def test_wishes_and_a_care_plan_action_before_the_case_opened_are_confirmed_with_one_tap(
        user: User, app_store: Store) -> None:
    child, _ = ben_child(app_store)
    case = case_dates(app_store, child)
    assert case.opened is not None and case.born is not None
    early = case.opened - timedelta(days=10)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)

    await user.open(f"/child/{child.id}/wishes")
    await user.should_see("Earlier work", retries=50)
    (picker,) = user.find(marker="on").elements
    assert picker.props["min"] == case.born.isoformat()
    picker.value = (case.born - timedelta(days=1)).isoformat()
    user.find(marker="child_words").type("I remember the old house.")
    user.find(marker="submit").click()
    await user.should_see(f"is before the child's date of birth ({shown(case.born)})", retries=50)
    await user.should_not_see(marker="confirm-date")
    picker.value = early.isoformat()
    user.find(marker="submit").click()
    await user.should_see("is before the case opened", retries=50)
    user.find(marker="confirm-date").click()
    await user.should_see("Wishes and feelings saved", retries=50)
    with app_store.session() as session:
        assert session.exec(select(WishesAndFeelings).where(WishesAndFeelings.child_id == child.id,
                                                            WishesAndFeelings.on == early)).first() is not None

    await user.open(f"/child/{child.id}/care-plan")
    await user.should_see("Add a plan", retries=50)
    with app_store.session() as session:
        plan = session.exec(select(CarePlan).where(CarePlan.child_id == child.id)).first()
    assert plan is not None
    user.find(marker=f"action-description-{plan.id}").type("Find the old school reports")
    user.find(marker=f"action-owner-{plan.id}").type("Social worker")
    for element in user.find(marker=f"action-due-{plan.id}").elements:
        element.value = early.isoformat()
    user.find(marker=f"action-save-{plan.id}").click()
    await user.should_see("is before the case opened", retries=50)
    user.find(marker="confirm-date").click()
    await user.should_see("Action added", retries=50)
    with app_store.session() as session:
        assert session.exec(select(CarePlanAction).where(CarePlanAction.child_id == child.id,
                                                         CarePlanAction.due == early)).first() is not None

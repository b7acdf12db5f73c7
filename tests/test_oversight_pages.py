"""The manager's and admin's screens as each role meets them, and what each role must not reach."""

from __future__ import annotations

from datetime import UTC, timedelta

from nicegui import ui
from nicegui.testing.user import User
from sqlmodel import col, select

from storage import oversight
from storage.audit_trail import initials
from storage.drafts import save_draft
from storage.life_story import LIFE_STORY_DRAFT_KIND
from storage.models import AuditEvent, Child, Device, Placement, RecordStatus, Visit, Worker
from storage.store import Store
from storage.timescales.calendar import LONDON, show_date, today_in_england
from tests.conftest import sign_in


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def child_of(store: Store, username: str) -> Child:
    who = worker(store, username)
    with store.session() as session:
        return session.exec(select(Child).where(Child.worker_id == who.id)).first()


def waiting_visit(store: Store, manager: str) -> Visit:
    who = worker(store, manager)
    with store.session() as session:
        teams = store.managed_team_ids(session, who)
        return session.exec(select(Visit).join(Child).where(
            Visit.status == RecordStatus.submitted.value, col(Child.team_id).in_(teams)).order_by(
            col(Visit.submitted_at))).first()


def denials(store: Store, username: str) -> list[tuple[str, str, str | None]]:
    who = worker(store, username)  # SQLite takes one transaction at a time: never open a session inside another
    with store.session() as session:
        events = session.exec(select(AuditEvent).where(
            AuditEvent.action == "denied", AuditEvent.worker_id == who.id).order_by(
            col(AuditEvent.seq)))
        return [(e.kind, e.record_id, e.child_id) for e in events]


async def test_a_manager_sees_their_team_by_status_filters_it_and_moves_a_child(user: User, app_store: Store) -> None:
    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open("/team")
    await user.should_see("Children in Care Team", retries=50)
    for words in ("Overdue", "Due this week", "Not seen alone", "Written up late", "Overdue actions",
                  "Visits in and out of timescale, by month", "Last 12 months:"):
        await user.should_see(words)
    await user.should_see(kind=ui.echart)
    await user.should_see("Chloe Dunmore · Child in care")
    await user.should_not_see("Erin Frost")  # another team's worker: none of her children appear

    ben, chloe = worker(app_store, "ben"), worker(app_store, "chloe")
    user.find(marker="filter-worker").elements.pop().value = ben.id  # narrows the list to Ben's children
    await user.should_not_see("Chloe Dunmore · Child in care")
    await user.should_see("Ben Castle · Child in care")

    child = child_of(app_store, "ben")
    name = app_store.opened(child).body.name
    user.find(marker=f"move-{child.id}").click()
    await user.should_see(f"Move {name} to another worker")
    user.find(marker="confirm-move").click()
    await user.should_see("Choose the worker to move this child to.")
    user.find(marker="move-to").elements.pop().value = chloe.id
    user.find(marker="confirm-move").click()
    await user.should_see(f"{name} is now allocated to Chloe Dunmore.", retries=50)
    with app_store.session() as session:
        assert session.get(Child, child.id).worker_id == chloe.id
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "allocate",
                                                     AuditEvent.record_id == child.id)).one()


async def test_before_a_child_moves_the_manager_is_told_of_the_workers_unfinished_work(
        user: User, app_store: Store) -> None:
    """A draft stays its author's, and its author cannot open it once the child is on another caseload: the
    manager hears of it before moving the child, in words (what, when last saved), never its contents."""
    ben = worker(app_store, "ben")
    with app_store.session() as session:
        first, second = session.exec(select(Child).where(Child.worker_id == ben.id).order_by(col(Child.id))).all()[:2]
    save_draft(app_store, ben, first.id, {"observations": "Half-written: the carer said she is moving house"})
    save_draft(app_store, ben, first.id, {"title": "Sports day"}, kind=LIFE_STORY_DRAFT_KIND)
    first_name, second_name = app_store.opened(first).body.name, app_store.opened(second).body.name
    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open("/team")
    await user.should_see("Children in Care Team", retries=50)
    user.find(marker=f"move-{first.id}").click()
    await user.should_see(f"Move {first_name} to another worker")
    today = f"{today_in_england():%-d %b %Y}"
    await user.should_see(f"Ben Castle has unfinished work for {first_name}: a life-story entry (last saved "
                          f"{today}); a visit record (last saved {today}).", retries=30)
    await user.should_not_see("moving house")  # the draft's words stay sealed, even from the manager
    user.find("Cancel").click()
    user.find(marker=f"move-{second.id}").click()
    await user.should_see(f"Move {second_name} to another worker")
    await user.should_not_see("has unfinished work")


async def test_a_manager_narrows_the_team_to_one_category(user: User, app_store: Store) -> None:
    await sign_in(user, "dev")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open("/team")
    await user.should_see("Children in Need and Disabled Children Team", retries=50)
    await user.should_see("· Child in need")
    await user.should_see("· Child protection")
    user.find(marker="filter-category").elements.pop().value = "cp"
    await user.should_see("· Child protection")
    await user.should_not_see("· Child in need")


async def test_a_manager_narrows_the_team_to_children_placed_out_of_area(user: User, app_store: Store) -> None:
    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    with app_store.session() as session:
        teams = app_store.managed_team_ids(session, worker(app_store, "amara"))
        near = session.exec(select(Child).join(Placement, col(Placement.child_id) == Child.id).where(
            col(Child.team_id).in_(teams), col(Placement.end).is_(None),
            col(Placement.out_of_area).is_(False))).first()
    assert near is not None
    near_name = app_store.opened(near).body.name
    await user.open("/team")
    await user.should_see("Children in Care Team", retries=50)
    await user.should_see(near_name)
    await user.should_see("· out of area (")
    user.find(kind=ui.switch).elements.pop().value = True
    await user.should_see("· out of area (")
    await user.should_not_see(near_name)


async def test_a_manager_reads_a_visit_writes_oversight_and_signs_it_off(user: User, app_store: Store) -> None:
    visit = waiting_visit(app_store, "amara")
    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open("/signoff")
    await user.should_see("waiting for sign-off, oldest first", retries=50)
    await user.open(f"/signoff/{visit.id}")
    await user.should_see("Observations (what was seen and heard)", retries=50)
    user.find("Sign off").click()
    await user.should_see("Write a management oversight note before signing the visit off.", retries=50)
    user.find("Management oversight note").type("Good analysis. Arrange the life-story session by Friday.")
    user.find("Sign off").click()
    await user.should_see("Visit signed off", retries=50)  # the confirmation, with the next in the queue
    await user.should_see("Next in your queue")
    amara = worker(app_store, "amara")
    with app_store.session() as session:
        row = session.get(Visit, visit.id)
        assert row.status == "signed_off" and row.signed_off_by == amara.id
        assert app_store.opened(row).body.manager_note.startswith("Good analysis.")
    await user.open(f"/signoff/{visit.id}")
    await user.should_see("Signed off by Amara Okafor", retries=50)
    await user.should_see("Signed-off records cannot be changed.")
    await user.should_not_see("Return to worker")


async def test_a_manager_returns_a_visit_with_a_reason(user: User, app_store: Store) -> None:
    visit = waiting_visit(app_store, "dev")
    await sign_in(user, "dev")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open(f"/signoff/{visit.id}")
    await user.should_see("Return to the worker instead", retries=50)
    user.find("Return to worker").click()
    await user.should_see("Say why the visit is being returned", retries=50)
    user.find("Why it is being returned").type("Please record the child's words as they said them.")
    user.find("Return to worker").click()
    await user.should_see("Visit returned to the worker.", retries=50)
    with app_store.session() as session:
        row = session.get(Visit, visit.id)
        assert row.status == "returned"
        assert app_store.opened(row).body.return_reason == "Please record the child's words as they said them."


async def test_a_practitioner_is_refused_the_manager_and_admin_screens(user: User, app_store: Store) -> None:
    visit = waiting_visit(app_store, "amara")  # a visit in Ben's own team
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    for path, words in (("/team", "This page is for team managers."),
                        ("/signoff", "This page is for team managers."),
                        ("/admin", "This page is for administrators."),
                        (f"/signoff/{visit.id}", "Not found: that visit is not in a team you manage"),
                        (f"/child/{visit.child_id}/audit", "Not found: that child is not in a team you manage")):
        await user.open(path)
        await user.should_see(words, retries=50)
        await user.should_not_see("Sign off")
    assert denials(app_store, "ben") == [
        ("page", "/team", None), ("page", "/signoff", None), ("page", "/admin", None),
        ("visit", visit.id, visit.child_id), ("audit_trail", visit.child_id, visit.child_id)]
    with app_store.session() as session:
        assert session.get(Visit, visit.id).status == "submitted"


async def test_a_manager_cannot_reach_another_teams_child_visit_or_trail(user: User, app_store: Store) -> None:
    theirs = waiting_visit(app_store, "dev")
    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open(f"/child/{theirs.child_id}")
    await user.should_see("Child not found", retries=50)
    await user.open(f"/signoff/{theirs.id}")
    await user.should_see("Not found: that visit is not in a team you manage", retries=50)
    await user.open(f"/child/{theirs.child_id}/audit")
    await user.should_see("Not found: that child is not in a team you manage", retries=50)
    await user.open("/signoff")
    await user.should_see("waiting for sign-off", retries=50)
    await user.should_not_see(f"/signoff/{theirs.id}")
    assert denials(app_store, "amara") == [
        ("child", theirs.child_id, theirs.child_id), ("visit", theirs.id, theirs.child_id),
        ("audit_trail", theirs.child_id, theirs.child_id)]


async def test_an_admin_revokes_a_device_sees_a_trail_and_reads_no_child(user: User, app_store: Store) -> None:
    ben = worker(app_store, "ben")
    with app_store.session() as session:
        device = Device(worker_id=ben.id, name="Ben's work phone")
        session.add(device)
    child = child_of(app_store, "ben")
    with app_store.session() as session:
        name = app_store.opened(session.get(Child, child.id)).body.name
    await sign_in(user, "admin")
    await user.should_see("My caseload", retries=50)
    await user.open("/admin")
    await user.should_see("Ben Castle: Ben's work phone", retries=50)
    await user.should_see("Amara Okafor (amara)")
    await user.should_see("Managed by Amara Okafor")
    user.find("Revoke").click()
    await user.should_see("Revoke Ben Castle's device", retries=50)
    user.find(marker="confirm-revoke").click()
    await user.should_see("is revoked", retries=50)
    with app_store.session() as session:
        assert session.get(Device, device.id).revoked_at is not None
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "revoke")).one().record_id == device.id

    await user.open(f"/child/{child.id}")
    await user.should_see("Child not found", retries=50)
    await user.should_not_see(name)
    await user.open("/team")
    await user.should_see("This page is for team managers.", retries=50)
    await user.open(f"/child/{child.id}/audit")
    await user.should_see(f"Child {child.id[:8]}", retries=50)
    await user.should_see("Sam Admin was refused access to the child's details")
    await user.should_not_see(name)
    assert denials(app_store, "admin") == [("child", child.id, child.id), ("page", "/team", None)]


async def test_a_manager_reaches_a_childs_audit_trail_from_the_child_page_and_a_worker_has_no_such_button(
        user: User, app_store: Store) -> None:
    child = child_of(app_store, "ben")
    await sign_in(user, "amara")
    await user.should_see("Team", retries=50)
    await user.open(f"/child/{child.id}")
    await user.should_see(marker="audit-trail", retries=50)
    user.find(marker="audit-trail").click()
    await user.should_see("events, newest first", retries=50)
    with app_store.session() as session:
        name = app_store.opened(session.get(Child, child.id)).body.name
    await user.should_see(f"Amara Okafor read {initials(name)}'s details", retries=50)  # her opening the child page


async def test_a_practitioner_sees_no_audit_trail_button_on_their_own_child(user: User, app_store: Store) -> None:
    child = child_of(app_store, "ben")
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child.id}")
    await user.should_see(marker="log-visit", retries=50)
    await user.should_not_see(marker="audit-trail")


async def test_a_read_through_the_web_app_names_the_browser_it_came_from(user: User, app_store: Store) -> None:
    # Issue 5: who, what, when and from which device. A hosted browser is named by a digest of its session.
    child = child_of(app_store, "ben")
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child.id}")
    await user.should_see(app_store.opened(child).body.name, retries=50)
    await user.open(f"/child/{child.id}")
    await user.should_see(app_store.opened(child).body.name, retries=50)
    ben = worker(app_store, "ben")
    with app_store.session() as session:
        reads = list(session.exec(select(AuditEvent).where(
            AuditEvent.action == "read", AuditEvent.worker_id == ben.id, AuditEvent.record_id == child.id)))
    assert len(reads) >= 2
    devices = {e.device_id for e in reads}
    assert len(devices) == 1  # the same browser both times
    (device,) = devices
    assert device is not None and device.startswith("web-") and len(device) == 16


async def test_a_manager_lands_on_the_team_and_a_worker_on_their_caseload(user: User, app_store: Store) -> None:
    await sign_in(user, "amara")
    await user.should_see("Children in Care Team", retries=50)  # the team dashboard's own content
    await user.should_not_see(marker="caseload")


async def test_a_worker_lands_on_their_caseload(user: User, app_store: Store) -> None:
    await sign_in(user, "ben")
    await user.should_see(marker="caseload", retries=50)
    await user.should_not_see("Children in Care Team")


async def test_the_audit_trail_reads_as_sentences_and_filters_by_child_worker_and_day(
        user: User, app_store: Store) -> None:
    visit = waiting_visit(app_store, "amara")
    amara, ben = worker(app_store, "amara"), worker(app_store, "ben")
    with app_store.session() as session:
        child = session.get(Child, visit.child_id)
        name = app_store.opened(child).body.name
        author = session.get(Worker, visit.worker_id).display_name.split()[0]
    oversight.sign_off(app_store, amara, visit.id, "Good analysis; agree the plan.")
    with app_store.session() as session:
        signed = session.exec(select(AuditEvent).where(AuditEvent.action == "sign_off",
                                                       AuditEvent.record_id == visit.id)).one()
    day = signed.at.replace(tzinfo=UTC).astimezone(LONDON).date()  # stored in UTC; the trail speaks England's time
    sentence = (f"Amara Okafor signed off {author}'s visit of {show_date(visit.visited_at.replace(tzinfo=UTC).astimezone(LONDON).date())} "
                f"for {initials(name)}, {show_date(day)} ")

    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)
    await user.open("/audit")  # every child in her teams
    await user.should_see("Every child in your teams", retries=50)
    await user.should_see(sentence)
    for noise in (visit.id[:8], "body.", "browser "):  # no ids, field lists or browser numbers
        await user.should_not_see(noise)

    await user.open(f"/audit?child={child.id}")
    await user.should_see(name, retries=50)
    await user.should_see(sentence)
    await user.open(f"/audit?child={child.id}&worker={ben.id}")  # Ben's actions only: not her sign-off
    await user.should_see(name, retries=50)
    await user.should_not_see(sentence)
    await user.open(f"/audit?child={child.id}&worker={amara.id}&since={day}&until={day}")
    await user.should_see(sentence, retries=50)
    before = day - timedelta(days=1)
    await user.open(f"/audit?child={child.id}&since={before}&until={before}")  # the day before: nothing of hers
    await user.should_see(name, retries=50)
    await user.should_not_see(sentence)
    await user.open(f"/audit?child={child.id}&since=yesterday")  # not a date: said so, and not filtered by day
    await user.should_see("Enter the days as dates, like 2027-03-04", retries=50)
    await user.should_see(sentence)

    # The filters on the page lead to the same query.
    await user.open("/audit")
    await user.should_see("Every child in your teams", retries=50)
    user.find(marker="filter-child").elements.pop().value = child.id
    user.find(marker="filter-worker").elements.pop().value = amara.id
    user.find(marker="filter-apply").click()
    await user.should_see(name, retries=50)
    await user.should_see(sentence)


async def test_a_worker_is_refused_the_teams_audit_trail(user: User, app_store: Store) -> None:
    await sign_in(user, "ben")
    await user.open("/audit")
    await user.should_see("This page is for team managers.", retries=50)
    assert denials(app_store, "ben") == [("page", "/audit", None)]

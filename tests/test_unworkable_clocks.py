"""One child whose clocks cannot be worked out (a child in care with no placement, say) silences nobody else.

The caseload, the team dashboard, the child's page, the scheduler and `seen due` each show that child as
"cannot work out what is due" with the reason, tell the manager, and carry on for every other child. Such a
record is refused at the door: by the import, and by the sync server (see tests/test_sync_policy.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from nicegui.testing.user import User
from sqlmodel import select

from storage import importer, notify, oversight
from storage.caseload import UNKNOWN, caseload
from storage.cases import all_open_cases
from storage.child_view import child_view
from storage.models import Child, ChildBody, Worker
from storage.store import Store
from storage.timescales import NEEDS
from storage.timescales.due import due_command
from tests.conftest import DEMO_DAY, sign_in

MORNING = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # the demo's day, before the digest hour


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def add_broken_child(store: Store) -> str:
    """A child in care on ben's caseload with no placement, as an old import or an older Seen left one."""
    ben = worker(store, "ben")
    with store.session() as session:
        child = Child(category="cic", team_id=ben.team_id or "", worker_id=ben.id, looked_after_since=date(2026, 9, 1))
        store.write(session, child, ChildBody(first_name="Nell", last_name="Noplace"), action="import")
        return child.id


@pytest.fixture
def broken_child(demo_store: Store) -> str:
    return add_broken_child(demo_store)


def test_the_caseload_and_the_childs_page_say_what_cannot_be_worked_out_and_why(demo_store, broken_child):
    rows = caseload(demo_store, worker(demo_store, "ben"), DEMO_DAY)
    first, *others = rows
    assert (first.child_id, first.status, first.clocks) == (broken_child, UNKNOWN, [])
    assert first.problem_line == f"Cannot work out what is due: {NEEDS['placements']}; add it to the child's record"
    assert others and all(row.clocks and not row.problem for row in others)

    view = child_view(demo_store, worker(demo_store, "ben"), broken_child, DEMO_DAY)
    assert view.clocks == [] and NEEDS["placements"] in view.problem


def test_the_team_dashboard_counts_the_child_and_shows_everyone_else(demo_store, broken_child):
    dash = oversight.team_dashboard(demo_store, worker(demo_store, "amara"), DEMO_DAY)
    figures = oversight.counts(dash.rows, DEMO_DAY)
    assert figures.cannot_work_out == 1
    assert figures.overdue + figures.due_this_week > 0  # the rest of the team's clocks are still there
    [row] = [r for r in dash.rows if r.child_id == broken_child]
    assert row.status == UNKNOWN and NEEDS["placements"] in row.problem


def test_the_scheduler_still_alerts_everyone_and_tells_the_manager(demo_store):
    before = notify.plan(demo_store, MORNING)
    broken = add_broken_child(demo_store)
    plan = notify.plan(demo_store, MORNING)
    assert broken not in {a.child_id for a in plan.alerts}
    # The same alerts for every other child; the manager's digest says there is a child it cannot time.
    assert [a for a in plan.alerts if a.stage != notify.DIGEST] == [
        a for a in before.alerts if a.stage != notify.DIGEST]
    amara = worker(demo_store, "amara").id
    [digest] = [a for a in plan.alerts if a.stage == notify.DIGEST and a.worker_id == amara]
    assert "for 1 child Seen cannot work out what is due" in digest.body
    [earlier] = [a for a in before.alerts if a.stage == notify.DIGEST and a.worker_id == amara]
    assert "cannot work out" not in earlier.body


def test_seen_due_prints_everyone_else_and_names_the_child_it_cannot_work_out(demo_store, broken_child, capsys):
    def load() -> list:
        with demo_store.session() as session:
            return all_open_cases(session)

    assert due_command(["--on", DEMO_DAY.isoformat(), "--json"], load) == 1
    out, err = capsys.readouterr()
    assert '"child"' in out and broken_child not in out
    assert f"cannot work out what is due for child {broken_child}: {NEEDS['placements']}" in err


def test_the_import_refuses_a_child_in_care_with_no_placement(demo_store):
    text = ("child_ref,first_name,last_name,category,team,worker,looked_after_since\n"
            "LCS0777,Nell,Noplace,cic,Imported Team,ben,2026-09-01\n")
    with pytest.raises(importer.ImportRejected) as rejected:
        importer.import_text(demo_store, text, DEMO_DAY)
    [error] = rejected.value.errors
    assert (error.line, error.column, error.reason) == (2, "placement_type", NEEDS["placements"])


async def test_the_worker_sees_it_on_the_caseload_and_the_childs_page(user: User, app_store: Store) -> None:
    broken = add_broken_child(app_store)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.should_see(f"Cannot work out what is due: {NEEDS['placements']}")
    await user.open(f"/child/{broken}")
    await user.should_see(marker="problem", retries=50)


async def test_the_manager_sees_it_on_the_team_dashboard(user: User, app_store: Store) -> None:
    add_broken_child(app_store)
    await sign_in(user, "amara")
    await user.should_see("Team dashboard", retries=50)  # a manager lands on the team
    await user.open("/team")
    await user.should_see("Children in Care Team", retries=50)
    await user.should_see(marker="problem")
    await user.should_see("children whose record lacks what their clocks need")

"""The manager's oversight in storage, on SQLite and PostgreSQL: dashboard figures, sign-off, returns,
allocation, roles, the admin's devices, and the audit trail."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import col, select

from storage import audit, oversight
from storage.audit_trail import TrailFilter, read_trail
from storage.models import (
    AuditEvent,
    CarePlan,
    CarePlanAction,
    CarePlanActionBody,
    CarePlanBody,
    Child,
    ChildBody,
    Device,
    RecordStatus,
    Visit,
    VisitBody,
    Worker,
)
from storage.store import NotAllowed, SignedOff, Store
from storage.sync import pull
from tests.conftest import DEMO_DAY


def workers(store: Store) -> dict[str, Worker]:
    with store.session() as session:
        return {w.username: w for w in session.exec(select(Worker))}


def denials(store: Store) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == "denied").order_by(
            col(AuditEvent.seq))))


def submitted_visit(store: Store, team_of: str) -> Visit:
    """A visit waiting for sign-off in the team `team_of` manages."""
    w = workers(store)
    with store.session() as session:
        teams = store.managed_team_ids(session, w[team_of])
        return session.exec(select(Visit).join(Child).where(
            Visit.status == RecordStatus.submitted.value, col(Child.team_id).in_(teams))).first()


def add_child(store: Store, owner: Worker, **dates: date) -> Child:
    with store.session() as session:
        child = Child(category="cin", team_id=owner.team_id, worker_id=owner.id, legal_status="S17", **dates)
        store.write(session, child, ChildBody(first_name="Test", last_name="Child"), action="create")
    return child


def add_visit(store: Store, child: Child, owner: Worker, on: date, *, alone: bool = True,
              written: date | None = None, status: str = RecordStatus.signed_off.value) -> Visit:
    at = datetime(on.year, on.month, on.day, 11, tzinfo=UTC)
    written_at = datetime(written.year, written.month, written.day, 16, tzinfo=UTC) if written else at
    with store.session() as session:
        visit = Visit(child_id=child.id, worker_id=owner.id, visited_at=at, seen=True, seen_alone=alone,
                      not_alone_reason=None if alone else "refused", status=status,
                      written_up_at=written_at if status != "draft" else None,
                      submitted_at=written_at if status != "draft" else None)
        store.write(session, visit, VisitBody(observations="Observed."), action="create")
    return visit


def test_the_dashboard_counts_what_a_manager_looks_for_and_charts_visits_in_timescale(demo_store: Store) -> None:
    w = workers(demo_store)
    on = DEMO_DAY
    child = add_child(demo_store, w["erin"], cin_plan_start=on - timedelta(days=120))
    add_visit(demo_store, child, w["erin"], on - timedelta(days=40), alone=False)
    add_visit(demo_store, child, w["erin"], on - timedelta(days=30), alone=False, written=on - timedelta(days=20))
    add_visit(demo_store, child, w["erin"], on - timedelta(days=9), status="draft")  # never written up
    with demo_store.session() as session:
        plan = CarePlan(child_id=child.id, kind="cin_plan", start=on - timedelta(days=120))
        demo_store.write(session, plan, CarePlanBody(), action="create")
        for due, status in [(on - timedelta(days=1), "open"), (on - timedelta(days=5), "done"),
                            (on + timedelta(days=3), "open")]:
            demo_store.write(session, CarePlanAction(plan_id=plan.id, child_id=child.id, due=due, status=status),
                             CarePlanActionBody(description="x"), action="create")

    before = oversight.counts(oversight.team_dashboard(demo_store, w["dev"], on=on).rows, on)
    dash = oversight.team_dashboard(demo_store, w["dev"], on=on)
    row = next(r for r in dash.rows if r.child_id == child.id)
    assert row.not_seen_alone_last_two
    assert row.late_write_ups == 2  # one written up 10 days late, one draft 9 days on
    assert row.overdue_actions == 1
    assert row.status == "overdue"  # the last visit was 30 days ago; CiN visits are due every 20 working days
    assert row.worker_name == "Erin Frost"
    assert {r.team_id for r in dash.rows} == {w["erin"].team_id}
    assert set(dash.workers.values()) == {"Erin Frost", "Femi Adeyemi"}

    only_mine = oversight.filter_rows(dash.rows, worker_id=w["erin"].id)
    assert child.id in {r.child_id for r in only_mine} and all(r.worker_id == w["erin"].id for r in only_mine)
    assert oversight.filter_rows(dash.rows, category="cp") and all(
        r.category == "cp" for r in oversight.filter_rows(dash.rows, category="cp"))
    cic = oversight.team_dashboard(demo_store, w["amara"], on=on)
    far = oversight.filter_rows(cic.rows, out_of_area=True)
    assert far and all(r.out_of_area for r in far) and len(far) < len(cic.rows)

    figures = oversight.counts(dash.rows, on)
    assert figures.children == len(dash.rows)
    assert figures.not_seen_alone >= 1 and figures.overdue_actions >= 1 and figures.late_write_ups >= 2
    assert figures.overdue == sum(1 for r in dash.rows for c in r.clocks if c.status == "overdue")
    assert before == figures

    # The chart: each seen visit in or out of timescale, by month.
    child = add_child(demo_store, w["femi"], cin_plan_start=date(2026, 8, 3))
    add_visit(demo_store, child, w["femi"], date(2026, 8, 20))  # within 20 working days of the plan: in
    add_visit(demo_store, child, w["femi"], date(2026, 10, 20))  # 2 months later: out of timescale
    add_visit(demo_store, child, w["femi"], date(2026, 11, 2))  # 9 working days later: in
    dash = oversight.team_dashboard(demo_store, w["dev"], on=on)
    series = oversight.monthly_series(dash.timings, on, {child.id})
    assert series.months[0] == "Dec 2025" and series.months[-1] == "Nov 2026" and len(series.months) == 12
    assert series.in_timescale[8:] == [1, 0, 0, 1]  # Aug, Sep, Oct, Nov
    assert series.out_of_timescale[8:] == [0, 0, 1, 0]
    team = oversight.monthly_series(dash.timings, on)
    assert sum(team.in_timescale) > 50 and sum(team.out_of_timescale) >= 1


def test_each_role_is_refused_what_it_must_not_reach_and_each_refusal_is_audited(
        demo_store: Store) -> None:
    w = workers(demo_store)
    ben = w["ben"]
    for attempt in (lambda: oversight.team_dashboard(demo_store, ben), lambda: oversight.signoff_queue(demo_store, ben),
                    lambda: oversight.admin_view(demo_store, ben)):
        with pytest.raises(NotAllowed):
            attempt()
    with pytest.raises(NotAllowed, match="administrators"):
        oversight.admin_view(demo_store, w["amara"])
    refused = denials(demo_store)
    assert [(e.worker_id, e.record_id) for e in refused] == [
        (ben.id, "/team"), (ben.id, "/signoff"), (ben.id, "/admin"), (w["amara"].id, "/admin")]
    with demo_store.session() as session:
        assert audit.verify(session).ok

    # Nor may a manager open or decide another team's visit; each refusal is audited on the visit.
    theirs = submitted_visit(demo_store, "dev")
    for attempt in (lambda: oversight.visit_for_review(demo_store, w["amara"], theirs.id),
                    lambda: oversight.sign_off(demo_store, w["amara"], theirs.id, "Looks fine"),
                    lambda: oversight.visit_for_review(demo_store, w["ben"], theirs.id),
                    lambda: oversight.visit_for_review(demo_store, w["amara"], "no-such-visit")):
        with pytest.raises(NotAllowed):
            attempt()
    refused = [e for e in denials(demo_store) if e.kind == "visit"]
    assert [(e.worker_id, e.record_id, e.child_id) for e in refused] == [
        (w["amara"].id, theirs.id, theirs.child_id), (w["amara"].id, theirs.id, theirs.child_id),
        (w["ben"].id, theirs.id, theirs.child_id), (w["amara"].id, "no-such-visit", None)]
    with demo_store.session() as session:
        assert session.get(Visit, theirs.id).status == "submitted"


def test_sign_off_needs_a_note_and_is_final_and_a_return_needs_a_reason(demo_store: Store) -> None:
    w = workers(demo_store)
    visit = submitted_visit(demo_store, "amara")
    queue = oversight.signoff_queue(demo_store, w["amara"])
    assert visit.id in {q.visit_id for q in queue}
    assert not oversight.signoff_queue(demo_store, w["dev"]) or visit.id not in {
        q.visit_id for q in oversight.signoff_queue(demo_store, w["dev"])}

    with pytest.raises(oversight.OversightError, match="oversight note"):
        oversight.sign_off(demo_store, w["amara"], visit.id, "  ")
    review = oversight.visit_for_review(demo_store, w["amara"], visit.id)
    assert review.awaiting_sign_off and review.child_name
    oversight.sign_off(demo_store, w["amara"], visit.id, "Agree with the analysis. Book the LAC review.")

    with demo_store.session() as session:
        row = session.get(Visit, visit.id)
        assert row.status == "signed_off" and row.signed_off_by == w["amara"].id and row.signed_off_at
        assert demo_store.opened(row).body.manager_note == "Agree with the analysis. Book the LAC review."
        actions = [e.action for e in audit.trail(session, row.child_id) if e.record_id == visit.id]
        assert actions[:2] == ["sign_off", "read"]
    assert visit.id not in {q.visit_id for q in oversight.signoff_queue(demo_store, w["amara"])}

    with pytest.raises(oversight.OversightError, match="already been signed off"):
        oversight.sign_off(demo_store, w["amara"], visit.id, "Again")
    with pytest.raises(oversight.OversightError, match="already been signed off"):
        oversight.return_to_worker(demo_store, w["amara"], visit.id, "Change it")
    # Storage itself refuses any change to the signed-off record, whoever writes it...
    with pytest.raises(SignedOff), demo_store.session() as session:
        row = session.get(Visit, visit.id)
        body = demo_store.opened(row).body
        body.observations = "Quietly rewritten."
        demo_store.write(session, row, body, actor=w["ben"])
    with pytest.raises(SignedOff), demo_store.session() as session:
        row = session.get(Visit, visit.id)
        row.seen_alone = not row.seen_alone
        demo_store.write(session, row, demo_store.opened(row).body, actor=w["ben"])
    # ...but the same record written again unchanged (a retried sync) is accepted.
    with demo_store.session() as session:
        row = session.get(Visit, visit.id)
        demo_store.write(session, row, demo_store.opened(row).body, action="sync")
    with demo_store.session() as session:
        assert demo_store.opened(session.get(Visit, visit.id)).body.observations != "Quietly rewritten."

    # Returned instead: back to the worker with the reason, and no longer waiting for sign-off.
    visit = submitted_visit(demo_store, "dev")
    with pytest.raises(oversight.OversightError, match="Say why"):
        oversight.return_to_worker(demo_store, w["dev"], visit.id, "")
    oversight.return_to_worker(demo_store, w["dev"], visit.id, "Record the child's own words, please.")
    with demo_store.session() as session:
        row = session.get(Visit, visit.id)
        assert row.status == "returned" and row.signed_off_by is None
        assert demo_store.opened(row).body.return_reason == "Record the child's own words, please."
    with pytest.raises(oversight.OversightError, match="not waiting for sign-off"):
        oversight.sign_off(demo_store, w["dev"], visit.id, "Fine")


def test_allocation_moves_the_child_to_the_new_workers_caseload_only(demo_store: Store) -> None:
    w = workers(demo_store)
    with demo_store.session() as session:
        child = session.exec(select(Child).where(Child.worker_id == w["ben"].id)).first()
    with pytest.raises(oversight.OversightError, match="team you manage"):
        oversight.allocate(demo_store, w["amara"], child.id, w["erin"].id)
    with pytest.raises(oversight.OversightError, match="already allocated"):
        oversight.allocate(demo_store, w["amara"], child.id, w["ben"].id)
    with pytest.raises(NotAllowed):
        oversight.allocate(demo_store, w["dev"], child.id, w["erin"].id)
    with pytest.raises(NotAllowed):
        oversight.allocate(demo_store, w["chloe"], child.id, w["chloe"].id)

    oversight.allocate(demo_store, w["amara"], child.id, w["chloe"].id)
    with demo_store.session() as session:
        assert child.id in {c.id for c in demo_store.visible_children(session, w["chloe"])}
        assert child.id not in {c.id for c in demo_store.visible_children(session, w["ben"])}
        assert not demo_store.may_see_child(session, w["ben"], session.get(Child, child.id))
        moved = session.exec(select(AuditEvent).where(AuditEvent.action == "allocate")).one()
        assert (moved.worker_id, moved.record_id) == (w["amara"].id, child.id)
        assert moved.detail == f"from {w['ben'].id} to {w['chloe'].id}"
        chloes = {c.id for c in demo_store.visible_children(session, w["chloe"])} - {child.id}
    # Through sync: the new worker's device is sent the child, the old worker's device is told to drop it.
    to_ben = pull.pull_page(demo_store, w["ben"], cursor=0, held=[child.id], child_ids=None)
    assert to_ben.removals == [child.id]
    to_chloe = pull.pull_page(demo_store, w["chloe"], cursor=0, held=chloes, child_ids=None)
    assert {(c["kind"], c["record_id"]) for c in to_chloe.changes} >= {("child", child.id)}


def test_an_admin_manages_devices_and_sees_a_trail_but_reads_no_case_record(demo_store: Store) -> None:
    w = workers(demo_store)
    with demo_store.session() as session:
        device = Device(worker_id=w["ben"].id, name="Ben's phone")
        session.add(device)
        child_id = session.exec(select(Child.id).where(Child.worker_id == w["ben"].id)).first()
    view = oversight.admin_view(demo_store, w["admin"])
    assert {x.username for x in view.workers} >= {"ben", "amara", "admin"}
    assert {t.name for t in view.teams} == {"Children in Care Team", "Children in Need and Disabled Children Team"}
    assert [(d.worker, d.name, d.revoked_at) for d in view.devices] == [("Ben Castle", "Ben's phone", None)]
    with pytest.raises(NotAllowed):
        oversight.revoke_device(demo_store, w["amara"], device.id)
    oversight.revoke_device(demo_store, w["admin"], device.id)
    with pytest.raises(oversight.OversightError, match="already been revoked"):
        oversight.revoke_device(demo_store, w["admin"], device.id)
    with demo_store.session() as session:
        assert session.get(Device, device.id).revoked_at is not None

        with pytest.raises(NotAllowed):
            demo_store.child_for(session, w["admin"], child_id)
    with pytest.raises(NotAllowed):
        oversight.team_dashboard(demo_store, w["admin"])

    one_child = TrailFilter(child_id=child_id)
    as_admin = read_trail(demo_store, w["admin"], one_child)
    assert as_admin.child_name is None and as_admin.children == {}  # the trail, not the record
    assert as_admin.lines[0].sentence.startswith("Sam Admin was refused access to")
    as_manager = read_trail(demo_store, w["amara"], one_child)
    assert as_manager.child_name  # the manager sees whose trail it is, and that the admin read it
    assert as_manager.lines[0].sentence.startswith("Sam Admin read ") and "audit trail" in as_manager.lines[0].sentence
    for who in ("ben", "dev"):
        with pytest.raises(NotAllowed):
            read_trail(demo_store, w[who], one_child)
    assert [e.kind for e in denials(demo_store)][-2:] == ["audit_trail", "audit_trail"]

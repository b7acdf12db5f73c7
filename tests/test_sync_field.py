"""Sync in the field (issue 19), through the real sync API: a `seen server` process on PostgreSQL.

A child who moves away never takes a device's unsent edits with them; one refused change never blocks the rest;
what a device still holds reaches its manager.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from datetime import time as dt_time

import pytest
from sqlmodel import select

from pwa.sync.client import Phase, SyncClient
from storage import notify, oversight
from storage.models import AuditEvent, CarePlanAction, Child, Device, LateChange, Visit, Worker
from storage.store import Store
from storage.sync import behind, moved
from storage.sync import conflicts as sync_conflicts
from storage.sync import node as sync_node
from storage.timescales.calendar import LONDON
from tests.sync_support import Caseload, add_visit, device, edit_action, worker

pytestmark = pytest.mark.postgres


def later() -> None:
    # Change stamps are milliseconds: the next write, on any node, is stamped after the last.
    time.sleep(0.01)


def held_on(node: Store, model: type, record_id: str) -> bool:
    with node.session() as session:
        return session.get(model, record_id) is not None


def signed_off_then_edited(server: Store, caseload: Caseload, ben: SyncClient, child_id: str) -> str:
    """A visit ben sent and amara signed off since, which ben's device then changes: a change the server refuses."""
    visit_id = add_visit(ben.store, child_id, caseload.workers["ben"], "I like it here.")
    assert ben.sync_once().pushed == 1
    oversight.sign_off(server, worker(server, caseload.workers["amara"]), visit_id, "Good visit.")
    with ben.store.session() as session:
        row = session.get(Visit, visit_id)
        row.status = "returned"
        ben.store.write(session, row, ben.store.opened(row).body, action="update")
    return visit_id


def test_edits_written_before_a_child_moved_are_taken_as_the_old_workers_and_the_manager_is_told(
        seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    bella = caseload.children["Bella"]
    visit_id = add_visit(ben.store, bella, caseload.workers["ben"], "I want to stay at my school.")
    edit_action(ben.store, caseload.actions["Bella"], outcome="Contact arranged for Saturdays")
    later()
    amara = worker(server, caseload.workers["amara"])
    oversight.allocate(server, amara, bella, caseload.workers["chloe"])

    report = ben.sync_once()
    assert report.phase == Phase.idle and report.pushed == 2 and report.refused == 0 and report.held == 0
    assert report.removed == 1
    with server.session() as session:
        visit = session.get(Visit, visit_id)
        assert visit is not None and visit.worker_id == caseload.workers["ben"]
        assert server.opened(visit).body.child_words == "I want to stay at my school."
        action = session.get(CarePlanAction, caseload.actions["Bella"])
        assert server.opened(action).body.outcome == "Contact arranged for Saturdays"
        late = session.exec(select(LateChange).where(LateChange.child_id == bella)).all()
    assert sorted(x.outcome for x in late) == ["accepted", "accepted"]
    # Only then did Bella leave ben's device; chloe, her worker now, receives what ben wrote.
    assert not held_on(ben.store, Child, bella) and not held_on(ben.store, Visit, visit_id)
    with ben.store.session() as session:
        assert session.exec(select(sync_node.Outbox)).first() is None
    chloe = device(server, caseload, server_url, tmp_path, "chloe")
    assert held_on(chloe.store, Visit, visit_id)

    # The manager is told, and notes it (audited).
    told = moved.late_changes(server, amara)
    assert {t.kind for t in told} == {"visit", "care plan action"} and all(t.outcome == "accepted" for t in told)
    assert "before the child's move to another worker" in told[0].reason and told[0].worker_name == "Ben"
    for item in told:
        moved.decide(server, amara, item.change_id, "seen")
    assert moved.late_changes(server, amara) == []
    with server.session() as session:
        decided = session.exec(select(AuditEvent).where(AuditEvent.action == "decide",
                                                        AuditEvent.kind == "late_change")).all()
    assert {e.record_id for e in decided} >= {t.change_id for t in told}


def test_edits_written_after_the_case_closed_are_held_for_the_manager_who_accepts_or_discards(
        seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    alfie, bella = caseload.children["Alfie"], caseload.children["Bella"]
    amara = worker(server, caseload.workers["amara"])
    with server.session() as session:  # the manager closes Alfie's case and moves Bella, on the hosted app
        child = session.get(Child, alfie)
        child.closed_on = child.looked_after_since
        server.outbox_enabled = True
        server.write(session, child, None, actor=amara, action="close", changed=["closed_on"])
    oversight.allocate(server, amara, bella, caseload.workers["chloe"])
    later()
    # ben's device has not heard yet, and ben records visits to both.
    late_alfie = add_visit(ben.store, alfie, caseload.workers["ben"], "Written after the case closed.")
    late_bella = add_visit(ben.store, bella, caseload.workers["ben"], "Written after Bella moved.")

    report = ben.sync_once()
    assert report.phase == Phase.idle and report.held == 2 and report.refused == 0 and report.removed == 2
    assert not held_on(ben.store, Child, alfie) and not held_on(ben.store, Child, bella)
    with server.session() as session:
        assert session.get(Visit, late_alfie) is None and session.get(Visit, late_bella) is None
        held = session.exec(select(AuditEvent).where(AuditEvent.action == "held")).all()
    assert {e.record_id for e in held} >= {late_alfie, late_bella}

    told = {t.child_id: t for t in moved.late_changes(server, amara)}
    assert told[alfie].outcome == "held" and "after the child's case closing" in told[alfie].reason
    assert told[bella].outcome == "held" and "after the child's move to another worker" in told[bella].reason
    # amara hears of them by a push alert too (the scheduler sends what `plan` decides), naming no child.
    pushed = notify.plan(server, datetime.now(UTC))
    assert {(a.child_id, a.stage, a.url) for a in pushed.alerts if a.worker_id == amara.id
            and a.clock == "late_change"} == {(alfie, "held", "/devices"), (bella, "held", "/devices")}
    moved.decide(server, amara, told[bella].change_id, "accepted")
    moved.decide(server, amara, told[alfie].change_id, "discarded")
    with server.session() as session:
        kept = session.get(Visit, late_bella)
        assert kept is not None and kept.worker_id == caseload.workers["ben"]
        assert session.get(Visit, late_alfie) is None
    assert moved.late_changes(server, amara) == []
    # The same change sent again (an answer lost on the way) is not taken twice or held twice.
    with server.session() as session:
        assert len(session.exec(select(LateChange).where(LateChange.child_id.in_([alfie, bella]))).all()) == 2


def test_a_child_stays_on_the_device_while_a_change_for_them_is_set_aside(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    alfie = caseload.children["Alfie"]
    visit_id = signed_off_then_edited(server, caseload, ben, alfie)  # ben changes it before hearing of the sign-off
    amara = worker(server, caseload.workers["amara"])
    later()
    oversight.allocate(server, amara, alfie, caseload.workers["chloe"])

    report = ben.sync_once()
    assert report.refused == 1
    aside = sync_node.set_aside(ben.store)
    assert [a.record_id for a in aside] == [visit_id] and "signed this record off" in aside[0].reason
    assert held_on(ben.store, Child, alfie)  # kept while the change is on the device
    sync_node.discard_set_aside(ben.store, caseload.workers["ben"], aside[0].change_id)
    assert ben.sync_once().removed == 1
    assert not held_on(ben.store, Child, alfie)
    with server.session() as session:  # the discard reached the server's trail
        discarded = session.exec(select(AuditEvent).where(AuditEvent.action == "discard",
                                                          AuditEvent.record_id == visit_id)).all()
    assert discarded and "signed this record off" in discarded[0].detail


def test_a_batch_with_one_poisoned_change_applies_the_other_fifty_and_sets_one_aside(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    ben.batch_size = 100
    alfie = caseload.children["Alfie"]
    visit_id = signed_off_then_edited(server, caseload, ben, alfie)  # the poisoned change
    good = [add_visit(ben.store, alfie, caseload.workers["ben"], f"Visit {i}") for i in range(50)]
    assert len(sync_node.pending_changes(ben.store, 100)) == 51  # one batch

    report = ben.sync_once()
    assert report.phase == Phase.idle and report.pushed == 50 and report.refused == 1
    with server.session() as session:
        assert all(session.get(Visit, v) is not None for v in good)
    aside = sync_node.set_aside(ben.store)
    assert len(aside) == 1 and aside[0].record_id == visit_id and aside[0].child_id == alfie
    assert sync_node.sync_status(ben.store).waiting == 0
    # Sent again unchanged, it is refused again; the worker's other work keeps flowing.
    sync_node.send_again(ben.store, aside[0].change_id)
    more = add_visit(ben.store, alfie, caseload.workers["ben"], "Later")
    report = ben.sync_once()
    assert report.pushed == 1 and report.refused == 1 and held_on(server, Visit, more)


def test_each_sync_reports_what_the_device_holds_and_a_device_behind_is_named(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    signed_off_then_edited(server, caseload, ben, caseload.children["Alfie"])
    amara = worker(server, caseload.workers["amara"])
    ben.sync_once()
    enrolment = sync_node.load_enrolment(ben.store)
    with server.session() as session:
        found = session.get(Device, enrolment.device_id)
    assert (found.waiting, found.set_aside, found.conflicts) == (0, 1, 0) and found.last_sync_at is not None
    since = found.waiting_since.date()
    rows = behind.team_devices(server, amara, since)
    mine = [r for r in rows if r.device.id == found.id]
    assert mine and mine[0].worker.id == caseload.workers["ben"] and mine[0].behind_since is None
    # Two working days on, the device is behind: its worker is alerted and the manager sees it.
    from storage.timescales.calendar import add_working_days

    later_day = add_working_days(since, 2)
    assert [r.behind_since for r in behind.team_devices(server, amara, later_day) if r.device.id == found.id] == [since]
    with server.session() as session:
        workers = {w.id: w for w in session.exec(select(Worker))}
        alerts = behind.waiting_alerts(session, workers, later_day)
    assert (caseload.workers["ben"], since) in [(w.id, s) for w, s in alerts]
    # The alert machinery sends it to ben (once: it is keyed by the day the changes began waiting).
    planned = notify.plan(server, datetime.combine(later_day, dt_time(10), tzinfo=LONDON))
    mine = [a for a in planned.alerts if a.worker_id == caseload.workers["ben"] and a.clock == "changes_waiting"]
    assert [(a.due, a.title) for a in mine] == [(since, "Changes waiting to sync")]


def test_an_unknown_late_decision_is_refused_and_audited(seeded, server_url):
    server, caseload = seeded
    amara = worker(server, caseload.workers["amara"])
    missing = str(uuid.uuid4())
    with pytest.raises(moved.NotAllowed):
        moved.decide(server, amara, missing, "discarded")
    with server.session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                     AuditEvent.record_id == missing)).first() is not None


def test_a_conflict_is_shown_with_both_values_decided_by_the_manager_audited_and_reaches_the_devices(
        seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    amara_node = device(server, caseload, server_url, tmp_path, "amara")
    action, alfie = caseload.actions["Alfie"], caseload.children["Alfie"]
    edit_action(ben.store, action, outcome="Contact arranged for Saturdays")
    later()
    edit_action(amara_node.store, action, outcome="Contact paused pending review")
    for client in (ben, amara_node, ben):
        assert client.sync_once().phase == Phase.idle
    amara = worker(server, caseload.workers["amara"])
    with server.session() as session:
        assert sync_conflicts.undecided(server, session, alfie) == ["care plan action: outcome"]

    (choice,) = sync_conflicts.conflicts_to_decide(server, amara)
    assert (choice.kept.value, choice.kept.who) == ("Contact paused pending review", "Amara (laptop)")
    assert (choice.other.value, choice.other.who) == ("Contact arranged for Saturdays", "Ben (laptop)")
    assert choice.kept.when is not None and choice.other.when is not None and choice.other.when <= choice.kept.when
    assert sync_conflicts.conflicts_to_decide(server, worker(server, caseload.workers["ben"])) == []
    with pytest.raises(moved.NotAllowed):  # not ben's to decide: refused and audited
        sync_conflicts.decide_conflict(server, worker(server, caseload.workers["ben"]), choice.id, "loser")

    server.outbox_enabled = True  # as on the hosted app: its writes reach the devices
    sync_conflicts.decide_conflict(server, amara, choice.id, "loser")
    with server.session() as session:
        assert server.opened(session.get(CarePlanAction, action)).outcome == "Contact arranged for Saturdays"
        assert sync_conflicts.undecided(server, session, alfie) == []
        events = {e.action for e in session.exec(select(AuditEvent).where(AuditEvent.record_id == choice.id))}
    assert {"decide", "denied"} <= events
    assert sync_conflicts.conflicts_to_decide(server, amara) == []
    ben.sync_once()
    with ben.store.session() as session:
        assert ben.store.opened(session.get(CarePlanAction, action)).outcome == "Contact arranged for Saturdays"
    assert sync_node.sync_status(ben.store).conflicts == 0

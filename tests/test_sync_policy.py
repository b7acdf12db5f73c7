"""What a synced change does is decided by the same policy as a tap on the screen (storage/policy.py).

Each attack is made from an enrolled device, through a real `seen server` process on PostgreSQL, with a
correctly signed batch: it is refused with the reason, nothing of it is stored, and the refusal is in the
server's audit trail. Legitimate pushes (a worker's new visit and edits, a manager signing off from their
own device) still apply.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import SQLModel, select

from pwa.sync import messages
from pwa.sync.client import Phase, SyncClient
from storage import oversight
from storage.models import (
    AuditEvent,
    CarePlan,
    CarePlanAction,
    ChangeLog,
    Child,
    MutableRecord,
    Placement,
    RecordStamp,
    Review,
    SyncState,
    Team,
    Visit,
    VisitBody,
    Worker,
)
from storage.store import Store
from storage.sync import changes as sync_changes
from storage.sync import node as sync_node
from storage.sync import pull
from tests.sync_support import (
    Caseload,
    add_visit,
    edit_action,
    enrol,
    new_store,
    seed,
)

pytestmark = pytest.mark.postgres


def device(server: Store, caseload: Caseload, url: str, tmp_path: Path, username: str) -> SyncClient:
    client = enrol(server, new_store(f"sqlite:///{tmp_path / f'{username}.db'}"), username, caseload, urls=[url])
    assert client.sync_once().phase == Phase.idle
    return client


def forged(source: Store, model: type[SQLModel], record_id: str, *, clock: str, fields: dict[str, Any] | None = None,
           body: dict[str, Any] | None = None, new_id: bool = False) -> dict[str, Any]:
    """A change a hostile device could make: a record as `source` holds it, altered, with a fresh clock."""
    with source.session() as session:
        row = session.get(model, record_id)
        assert row is not None
        change = sync_changes.record_as_change(source, session, row)
    change.update(change_id=str(uuid.uuid4()), clock=clock)
    change["fields"].update(fields or {})
    if body:
        change["body"].update(body)
    if new_id:
        change["record_id"] = change["fields"]["id"] = str(uuid.uuid4())
    if issubclass(model, MutableRecord):
        clocks = json.loads(change["fields"]["field_clocks"])
        for name in [*(fields or {}), *(f"body.{n}" for n in body or {})]:
            clocks[name] = clock
        change["fields"]["field_clocks"] = json.dumps(clocks)
    return change


def push(url: str, client: SyncClient, changes: list[dict[str, Any]]) -> httpx.Response:
    """A correctly signed batch, as the device's token signs it."""
    enrolment = sync_node.load_enrolment(client.store)
    assert enrolment is not None
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
    batch_id = str(uuid.uuid4())
    return httpx.post(f"{url}/api/sync/push", headers={"Authorization": f"Bearer {enrolment.token}"}, timeout=60,
                      json={"batch_id": batch_id, "changes": wire,
                            "signature": messages.batch_signature(messages.token_key(enrolment.token), batch_id, wire)})


def assert_refused(server: Store, response: httpx.Response, change: dict[str, Any], words: str, rule: str) -> None:
    """403 naming the change and why; nothing of it logged; a "denied" event for its record with the rule."""
    assert response.status_code == 403, response.text
    answer = response.json()
    assert answer["code"] == "not_allowed" and answer["change_ids"] == [change["change_id"]]
    assert words in answer["reasons"][change["change_id"]] and words in answer["message"]
    with server.session() as session:
        assert session.exec(select(ChangeLog).where(ChangeLog.change_id == change["change_id"])).first() is None
        denied = session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                       AuditEvent.record_id == change["record_id"])).all()
    mine = [e for e in denied if change["change_id"] in e.detail]
    assert [e.detail.rsplit(": ", 1)[1] for e in mine] == [rule]
    assert mine[0].worker_id is not None and mine[0].device_id is not None  # who, and from which device


def refusals(node: Store) -> list[str]:
    with node.session() as session:
        return [s.value for s in session.exec(select(SyncState)) if s.key.startswith(sync_node.REFUSED_PREFIX)]


def server_row(server: Store, kind: str, record_id: str) -> Any:
    """A copy of a directory row (team, worker), detached, to put on a node."""
    model = {"team": Team, "worker": Worker}[kind]
    with server.session() as session:
        row = session.get(model, record_id)
        assert row is not None
        return model.model_validate(row.model_dump())


def worker_on(store: Store, worker_id: str) -> Worker:
    with store.session() as session:
        found = session.get(Worker, worker_id)
    assert found is not None
    return found


def stored(server: Store, model: type[SQLModel], record_id: str) -> tuple[dict[str, Any], Any]:
    with server.session() as session:
        row = session.get(model, record_id)
        assert row is not None
        return row.model_dump(exclude={"sealed"}), server.opened(row).body


def test_a_signed_off_visit_cannot_be_rewritten_from_a_device(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    visit_id = add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "I like it here.")
    assert ben.sync_once().pushed == 1
    oversight.sign_off(server, worker_on(server, caseload.workers["amara"]), visit_id, "Good visit.")
    before = stored(server, Visit, visit_id)

    rewrite = forged(ben.store, Visit, visit_id, clock=ben.store.hlc.stamp(), fields={"status": "submitted"},
                     body={"observations": "Something else entirely."})
    assert_refused(server, push(server_url, ben, [rewrite]), rewrite, "signed this record off", "signed_off_final")
    assert stored(server, Visit, visit_id) == before

    # The client sets a refused change aside, with its reason, and carries on.
    with ben.store.session() as session:
        row = session.get(Visit, visit_id)
        row.status = "returned"
        ben.store.write(session, row, ben.store.opened(row).body, action="update")
    report = ben.sync_once()
    assert report.phase == Phase.idle and report.refused == 1
    assert stored(server, Visit, visit_id) == before


def test_an_imported_signed_off_visit_with_no_sync_clock_is_as_final(seeded, server_url, tmp_path):
    # Demo and imported records carry no clock row on the server: the policy reads the record itself.
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    with server.session() as session:
        imported = Visit(child_id=caseload.children["Bella"], worker_id=caseload.workers["ben"],
                         visited_at=datetime(2026, 10, 1, 12, 0, tzinfo=UTC), status="signed_off",
                         submitted_at=datetime(2026, 10, 1, 12, 0, tzinfo=UTC))
        server.write(session, imported, VisitBody(observations="Imported from the case management system."),
                     action="import")
        assert session.get(RecordStamp, imported.id) is None
    before = stored(server, Visit, imported.id)

    rewrite = forged(server, Visit, imported.id, clock=ben.store.hlc.stamp(), fields={"seen_alone": False},
                     body={"observations": "Rewritten."})
    assert_refused(server, push(server_url, ben, [rewrite]), rewrite, "signed this record off", "signed_off_final")
    assert stored(server, Visit, imported.id) == before


def test_a_new_visit_arrives_as_its_devices_workers_and_never_already_signed_off(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    visit_id = add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "Mine")
    clock = ben.store.hlc.stamp()

    signed = forged(ben.store, Visit, visit_id, clock=clock, new_id=True, fields={
        "status": "signed_off", "signed_off_by": caseload.workers["amara"],
        "signed_off_at": "2026-11-21T10:00:00Z"})
    assert_refused(server, push(server_url, ben, [signed]), signed, "only a manager signs it off", "not_signer")

    chloes = forged(ben.store, Visit, visit_id, clock=clock, new_id=True, fields={"worker_id": caseload.workers["chloe"]})
    assert_refused(server, push(server_url, ben, [chloes]), chloes, "names another worker", "not_author")

    with server.session() as session:
        assert session.get(Visit, signed["record_id"]) is None and session.get(Visit, chloes["record_id"]) is None
    # The worker's own visit, as the device wrote it, is taken.
    report = ben.sync_once()
    assert report.phase == Phase.idle and report.pushed == 1 and report.refused == 0
    assert stored(server, Visit, visit_id)[0]["worker_id"] == caseload.workers["ben"]


def test_a_worker_cannot_move_or_close_their_own_child_or_add_one_to_another_team(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    alfie = caseload.children["Alfie"]
    before = stored(server, Child, alfie)

    moved = forged(ben.store, Child, alfie, clock=ben.store.hlc.stamp(),
                   fields={"worker_id": caseload.workers["erin"], "team_id": caseload.teams["cin"]})
    assert_refused(server, push(server_url, ben, [moved]), moved, "Only a manager of the child's team", "not_manager")

    closed = forged(ben.store, Child, alfie, clock=ben.store.hlc.stamp(), fields={"closed_on": "2026-11-20"})
    response = push(server_url, ben, [closed])
    assert response.status_code == 403 and "close a case" in response.json()["reasons"][closed["change_id"]]
    assert stored(server, Child, alfie) == before

    elsewhere = forged(ben.store, Child, alfie, clock=ben.store.hlc.stamp(), new_id=True,
                       fields={"team_id": caseload.teams["cin"]})
    assert_refused(server, push(server_url, ben, [elsewhere]), elsewhere, "only to your own team", "other_team")
    with server.session() as session:
        assert session.get(Child, elsewhere["record_id"]) is None

    recategorised = forged(ben.store, Child, alfie, clock=ben.store.hlc.stamp(), fields={"category": "cin"})
    assert_refused(server, push(server_url, ben, [recategorised]), recategorised, "change the child's category",
                   "not_manager")
    assert stored(server, Child, alfie) == before

    unknown = forged(ben.store, Child, alfie, clock=ben.store.hlc.stamp(), fields={"legal_status": "XX"})
    assert_refused(server, push(server_url, ben, [unknown]), unknown, "not an SSDA903 legal status", "invalid")

    # An ordinary edit of the child's details is still the worker's to make.
    legal = forged(ben.store, Child, alfie, clock=ben.store.hlc.stamp(), fields={"legal_status": "C2"})
    assert push(server_url, ben, [legal]).json()["applied"] == [legal["change_id"]]


def test_an_action_cannot_join_another_teams_childs_care_plan(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    with server.session() as session:
        daisys_plan = session.exec(select(CarePlan).where(CarePlan.child_id == caseload.children["Daisy"])).one()
    linked = forged(ben.store, CarePlanAction, caseload.actions["Alfie"], clock=ben.store.hlc.stamp(), new_id=True,
                    fields={"plan_id": daisys_plan.id})
    assert_refused(server, push(server_url, ben, [linked]), linked, "could not be found for this child", "other_plan")
    with server.session() as session:
        assert session.exec(select(CarePlanAction).where(CarePlanAction.plan_id == daisys_plan.id)).all() == [
            session.get(CarePlanAction, caseload.actions["Daisy"])]
    # Editing the worker's own action is still theirs to do.
    edit_action(ben.store, caseload.actions["Alfie"], outcome="Contact arranged")
    assert ben.sync_once().pushed == 1


def test_a_managers_device_signs_off_and_reallocates_in_their_own_team(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    amara = device(server, caseload, server_url, tmp_path, "amara")
    visit_id = add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "Settled.")
    assert ben.sync_once().pushed == 1
    assert amara.sync_once().phase == Phase.idle
    manager = worker_on(amara.store, caseload.workers["amara"])

    returned_id = add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "Fine.")
    assert ben.sync_once().pushed == 1 and amara.sync_once().phase == Phase.idle

    oversight.sign_off(amara.store, manager, visit_id, "Seen alone; good.")
    oversight.return_to_worker(amara.store, manager, returned_id, "Say whether the bedroom was seen.")
    oversight.allocate(amara.store, manager, caseload.children["Bella"], caseload.workers["chloe"])
    report = amara.sync_once()
    assert report.phase == Phase.idle and report.pushed == 3 and report.refused == 0, refusals(amara.store)
    assert stored(server, Visit, returned_id)[0]["status"] == "returned"

    clear, body = stored(server, Visit, visit_id)
    assert (clear["status"], clear["signed_off_by"], body.manager_note) == (
        "signed_off", caseload.workers["amara"], "Seen alone; good.")
    assert stored(server, Child, caseload.children["Bella"])[0]["worker_id"] == caseload.workers["chloe"]
    # A manager of another team cannot sign it off, nor move their team's child.
    dev = device(server, caseload, server_url, tmp_path, "dev")
    signed = forged(server, Visit, visit_id, clock=dev.store.hlc.stamp(), new_id=False,
                    fields={"signed_off_by": caseload.workers["dev"]})
    response = push(server_url, dev, [signed])
    assert response.status_code == 403 and response.json()["change_ids"] == [signed["change_id"]]


def test_a_visit_dated_in_the_future_is_refused(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    visit_id = add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "Soon")
    future = forged(ben.store, Visit, visit_id, clock=ben.store.hlc.stamp(), new_id=True,
                    fields={"visited_at": "9999-12-31T00:00:00Z"})
    assert_refused(server, push(server_url, ben, [future]), future, "in the future", "future")


# ------------------------------------------------------------------------------------------------ clocks


FAR_FUTURE = "004102444800000-000000-attacker"  # 2100-01-01: it would win over every honest edit until then


def test_a_change_with_a_clock_far_ahead_is_refused_and_honest_edits_still_apply(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    action = caseload.actions["Alfie"]
    before = stored(server, CarePlanAction, action)

    ahead = forged(ben.store, CarePlanAction, action, clock=FAR_FUTURE, body={"outcome": "Forever mine"})
    assert_refused(server, push(server_url, ben, [ahead]), ahead, "ahead of the server's time", "clock_ahead")
    long = forged(ben.store, CarePlanAction, action, clock="9" * 25 + "-000000-attacker", body={"outcome": "Mine"})
    assert_refused(server, push(server_url, ben, [long]), long, "not a hybrid logical clock", "bad_clock")
    assert stored(server, CarePlanAction, action) == before

    edit_action(ben.store, action, outcome="Contact arranged")
    report = ben.sync_once()
    assert report.pushed == 1 and report.refused == 0 and report.outdated == 0
    assert stored(server, CarePlanAction, action)[1].outcome == "Contact arranged"


def test_a_change_that_changes_nothing_is_not_answered_applied(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    action = caseload.actions["Alfie"]
    stale = ben.store.hlc.stamp()  # made before the edit below: older than the value the server will hold
    edit_action(ben.store, action, outcome="Contact arranged")
    assert ben.sync_once().pushed == 1

    late = forged(ben.store, CarePlanAction, action, clock=stale, body={"outcome": "An older idea"})
    answer = push(server_url, ben, [late]).json()
    assert answer["applied"] == [] and answer["outdated"] == [late["change_id"]]
    assert stored(server, CarePlanAction, action)[1].outcome == "Contact arranged"


def test_a_pulled_clock_far_ahead_moves_a_nodes_clock_only_a_few_minutes(tmp_path):
    from storage.hlc import MAX_AHEAD_MS, ChangeStamper

    wall = 1_795_000_000_000  # 2026-11-18, fixed
    clock = ChangeStamper("node1", device_ms=lambda: wall)
    clock.observe(FAR_FUTURE)
    ms = int(clock.stamp().split("-")[0])
    assert wall < ms <= wall + MAX_AHEAD_MS + 1

    # And a node applying a pulled page that carries one keeps its own clock near its time.
    node = new_store(f"sqlite:///{tmp_path / 'node.db'}")
    server = new_store(f"sqlite:///{tmp_path / 'server.db'}")
    caseload = seed(server)
    with server.session() as session:
        changes = [sync_changes.record_as_change(server, session, session.get(Child, caseload.children["Alfie"]))]
    changes[0]["fields"]["field_clocks"] = json.dumps({"legal_status": FAR_FUTURE})
    changes[0]["fields"]["legal_status"] = "C2"
    with node.session() as session:
        for team_id in caseload.teams.values():
            session.add(server_row(server, "team", team_id))
        session.flush()
        session.add(server_row(server, "worker", caseload.workers["ben"]))
    sync_node.apply_pulled(node, pull.PullPage(changes=changes, removals=[], directory={}, cursor=1,
                                                      more=False))
    assert int(node.hlc.stamp().split("-")[0]) <= int(datetime.now(UTC).timestamp() * 1000) + MAX_AHEAD_MS + 1000


def test_a_child_in_care_without_a_placement_is_refused_at_the_door_and_taken_with_one(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    clock = ben.store.hlc.stamp()
    child = forged(ben.store, Child, caseload.children["Alfie"], clock=clock, new_id=True)
    response = push(server_url, ben, [child])
    assert_refused(server, response, child, "needs at least one placement", "unworkable")
    with server.session() as session:
        assert session.get(Child, child["record_id"]) is None

    fields = Placement(child_id=child["record_id"], placement_type="U4", start=date(2026, 1, 5)).model_dump(
        mode="json", exclude={"sealed"})
    fields["field_clocks"] = json.dumps({name: clock for name in fields if name != "id"})
    placement = {"change_id": str(uuid.uuid4()), "kind": "placement", "record_id": fields["id"], "fields": fields,
                 "body": {}, "clock": clock, "base_clocks": {}}
    again = {**child, "change_id": str(uuid.uuid4())}
    assert push(server_url, ben, [again, placement]).json()["applied"] == [again["change_id"], placement["change_id"]]


def test_a_placement_the_903_would_reject_is_refused_by_sync_as_on_the_child_page(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    clock = ben.store.hlc.stamp()
    fields = Placement(child_id=caseload.children["Alfie"], placement_type="T0", start=date(2026, 1, 5),
                       provider_code="PR1").model_dump(mode="json", exclude={"sealed"})
    fields["field_clocks"] = json.dumps({name: clock for name in fields if name != "id"})
    placement = {"change_id": str(uuid.uuid4()), "kind": "placement", "record_id": fields["id"], "fields": fields,
                 "body": {}, "clock": clock, "base_clocks": {}}
    response = push(server_url, ben, [placement])
    assert_refused(server, response, placement, "A temporary placement (T0) has no provider code", "invalid")


def test_a_review_with_the_wrong_participation_code_for_the_childs_age_is_refused_by_sync(seeded, server_url, tmp_path):
    server, caseload = seeded
    with server.session() as session:  # Alfie was born in 2015: eleven at a review in 2026
        alfie = session.get(Child, caseload.children["Alfie"])
        body = server.opened(alfie).body
        server.write(session, alfie, body.model_copy(update={"date_of_birth": date(2015, 1, 1)}))
    ben = device(server, caseload, server_url, tmp_path, "ben")
    clock = ben.store.hlc.stamp()

    def review(participation: str) -> dict[str, Any]:
        fields = Review(child_id=caseload.children["Alfie"], kind="cic_review", held_on=date(2026, 3, 2),
                        participation=participation).model_dump(mode="json", exclude={"sealed"})
        fields["field_clocks"] = json.dumps({name: clock for name in fields if name != "id"})
        return {"change_id": str(uuid.uuid4()), "kind": "review", "record_id": fields["id"], "fields": fields,
                "body": {}, "clock": clock, "base_clocks": {}}

    wrong = review("PN0")
    assert_refused(server, push(server_url, ben, [wrong]), wrong, "says the child was under four (PN0)", "invalid")
    right = review("PN1")
    assert push(server_url, ben, [right]).json()["applied"] == [right["change_id"]]


def test_a_placement_ending_in_custody_before_ten_is_refused_by_sync_as_on_the_child_page(seeded, server_url,
                                                                                          tmp_path):
    server, caseload = seeded
    with server.session() as session:  # born in 2017: eight when the placement ends in 2026
        alfie = session.get(Child, caseload.children["Alfie"])
        server.write(session, alfie, server.opened(alfie).body.model_copy(update={"date_of_birth": date(2017, 6, 1)}))
    ben = device(server, caseload, server_url, tmp_path, "ben")
    clock = ben.store.hlc.stamp()

    def placement(reason: str) -> dict[str, Any]:
        fields = Placement(child_id=caseload.children["Alfie"], placement_type="U4", start=date(2026, 1, 5),
                           end=date(2026, 3, 2), provider_code="PR1", urn="SC123456",
                           change_reason=reason).model_dump(mode="json", exclude={"sealed"})
        fields["field_clocks"] = json.dumps({name: clock for name in fields if name != "id"})
        return {"change_id": str(uuid.uuid4()), "kind": "placement", "record_id": fields["id"], "fields": fields,
                "body": {}, "clock": clock, "base_clocks": {}}

    custody = placement("CUSTOD")
    assert_refused(server, push(server_url, ben, [custody]), custody, "a child under ten cannot move", "invalid")
    moved = placement("CARPL")
    assert push(server_url, ben, [moved]).json()["applied"] == [moved["change_id"]]

"""Sync against real `seen server` processes on loopback and the real PostgreSQL."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from pwa.sync import messages
from pwa.sync.client import Phase
from storage import audit
from storage.models import (
    AuditEvent,
    CarePlanAction,
    ChangeLog,
    Child,
    Conflict,
    Device,
    KeyringEntry,
    Outbox,
    Visit,
    Worker,
)
from storage.store import Store
from storage.sync import bulk, devices, server_log
from storage.sync import changes as sync_changes
from storage.sync import conflicts as sync_conflicts
from storage.sync import node as sync_node
from storage.sync import pull as sync_pull
from tests.sync_support import (
    Caseload,
    SyncServer,
    add_visit,
    edit_action,
    enrol,
    log_counts,
    new_store,
    seed,
    server_store,
    state_of,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def servers(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SyncServer]]:
    """Two `seen server` processes on the same PostgreSQL, shared by this module's tests."""
    running = [SyncServer(pg_url, tmp_path_factory.mktemp(f"server{i}")) for i in range(2)]
    for server in running:
        server.start()
    yield running
    for server in running:
        server.kill()


@pytest.fixture
def seeded(pg_url: str, servers: list[SyncServer]) -> Iterator[tuple[Store, Caseload]]:
    """The server's database as the test sees it, with a caseload of the test's own."""
    server = server_store(pg_url)
    caseload = seed(server, suffix="-" + uuid.uuid4().hex[:6])
    yield server, caseload
    server.engine.dispose()


def node(tmp_path: Path, name: str) -> Store:
    return new_store(f"sqlite:///{tmp_path / f'{name}.db'}")


def child_state(store: Store, child_ids: list[str]) -> dict:
    state = state_of(store)
    return {k: v for k, v in state.items() if v[0].get("child_id", v[0].get("id")) in child_ids}


def test_two_nodes_edit_offline_and_converge_keeping_the_losing_value(seeded, servers, tmp_path):
    server, caseload = seeded
    url = servers[0].url
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[url])
    amara = enrol(server, node(tmp_path, "amara"), "amara", caseload, urls=[url])
    assert ben.sync_once().phase == Phase.idle
    assert amara.sync_once().phase == Phase.idle
    action = caseload.actions["Alfie"]

    # Offline on both: each records work, and both change the same care plan action's outcome.
    visit = add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "I like my new school.")
    edit_action(ben.store, action, outcome="Contact arranged for Saturdays")
    edit_action(amara.store, action, outcome="Contact paused pending review", status="in_progress")

    for client in (ben, amara, ben):
        report = client.sync_once()
        assert report.phase == Phase.idle, report.message

    ben_children = [caseload.children["Alfie"], caseload.children["Bella"]]
    assert child_state(ben.store, ben_children) == child_state(amara.store, ben_children)
    assert child_state(ben.store, ben_children) == child_state(server, ben_children)
    with ben.store.session() as session:
        assert ben.store.opened(session.get(CarePlanAction, action)).outcome == "Contact paused pending review"
        assert session.get(CarePlanAction, action).status == "in_progress"  # amara's status, not in conflict
        words = ben.store.opened(session.exec(select(sync_changes.MODEL_OF["visit"])).one()).child_words
        assert words == "I like my new school."
    # The losing value is kept, and every node and the server show it.
    for store in (ben.store, amara.store, server):
        with store.session() as session:
            [shown] = sync_conflicts.conflicts(store, session, [caseload.children["Alfie"]])
        assert (shown.conflict.field, shown.winner, shown.loser) == (
            "body.outcome", "Contact paused pending review", "Contact arranged for Saturdays")
    assert sync_node.sync_status(ben.store).conflicts == 1
    assert sync_node.sync_status(ben.store).waiting == 0
    assert visit in {k.split(":")[1] for k in state_of(amara.store)}


def test_another_teams_child_is_refused_on_push_and_pull(seeded, servers, tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[servers[0].url])
    assert ben.sync_once().phase == Phase.idle
    enrolment = sync_node.load_enrolment(ben.store)
    daisy = caseload.children["Daisy"]  # erin's child, in the CiN team
    headers = {"Authorization": f"Bearer {enrolment.token}"}

    pulled = httpx.post(f"{servers[0].url}/api/sync/pull", json={"child_ids": [daisy]}, headers=headers, timeout=60)
    assert pulled.status_code == 403
    assert pulled.json()["code"] == "not_allowed"
    with server.session() as session:
        # The trail says who asked for which child, from which device; and which children this device took.
        (denied,) = session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                                 AuditEvent.record_id == daisy))
        assert (denied.worker_id, denied.device_id) == (caseload.workers["ben"], enrolment.device_id)
        downloads = {e.record_id: e.device_id for e in session.exec(select(AuditEvent).where(
            AuditEvent.action == "read", AuditEvent.detail == "downloaded to the device"))}
        assert downloads[caseload.children["Alfie"]] == enrolment.device_id
        assert daisy not in downloads

    # A visit to erin's child, written on ben's node, is refused and nothing of the batch is applied.
    with ben.store.session() as session:
        session.add(Child(id=daisy, category="cin", team_id=caseload.teams["cin"], worker_id=caseload.workers["erin"]))
    add_visit(ben.store, daisy, caseload.workers["ben"], "Not ben's to write")
    add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "Fine")
    changes = sync_node.pending_changes(ben.store)
    batch_id = str(uuid.uuid4())
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
    signature = messages.batch_signature(messages.token_key(enrolment.token), batch_id, wire)
    pushed = httpx.post(f"{servers[1].url}/api/sync/push", headers=headers,
                        json={"batch_id": batch_id, "changes": wire, "signature": signature}, timeout=60)
    # The refused change is answered with its reason; the rest of the batch is applied (issue 19).
    assert pushed.status_code == 200
    answer = pushed.json()
    assert list(answer["refused"]) == [changes[0]["change_id"]] and answer["applied"] == [changes[1]["change_id"]]
    assert "not on this worker's caseload" in answer["refused"][changes[0]["change_id"]]
    assert len(log_counts(server, caseload)) == 1

    # The client sets the refused change aside (kept, shown); nothing else waits.
    report = ben.sync_once()
    assert report.refused == 1 and report.pushed == 0
    assert sync_node.sync_status(ben.store).refused == 1
    assert len(log_counts(server, caseload)) == 1
    with ben.store.session() as session:
        assert session.get(Child, daisy) is not None  # kept while a change for her is on the device
    (aside,) = sync_node.set_aside(ben.store)
    sync_node.discard_set_aside(ben.store, caseload.workers["ben"], aside.change_id)
    ben.sync_once()
    with ben.store.session() as session:
        assert session.get(Child, daisy) is None  # then pull removed the child ben may not see


def test_replayed_batch_applies_once_and_tampered_batch_is_refused(seeded, servers, tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[servers[0].url])
    ben.sync_once()
    enrolment = sync_node.load_enrolment(ben.store)
    headers = {"Authorization": f"Bearer {enrolment.token}"}
    add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "Once only")
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in sync_node.pending_changes(ben.store)]
    batch_id = str(uuid.uuid4())
    batch = {"batch_id": batch_id, "changes": wire,
             "signature": messages.batch_signature(messages.token_key(enrolment.token), batch_id, wire)}

    tampered = {**batch, "changes": [{**wire[0], "body": {**wire[0]["body"], "child_words": "Altered"}}]}
    refused = httpx.post(f"{servers[0].url}/api/sync/push", json=tampered, headers=headers, timeout=60)
    assert refused.status_code == 400
    assert refused.json()["code"] == "tampered"
    assert "altered" in refused.json()["message"]
    assert log_counts(server, caseload) == {}

    first = httpx.post(f"{servers[0].url}/api/sync/push", json=batch, headers=headers, timeout=60)
    replay = httpx.post(f"{servers[1].url}/api/sync/push", json=batch, headers=headers, timeout=60)
    assert first.status_code == replay.status_code == 200
    assert first.json()["applied"] == [wire[0]["change_id"]]
    assert replay.json()["applied"] == [] and replay.json()["duplicates"] == [wire[0]["change_id"]]
    assert log_counts(server, caseload) == {wire[0]["change_id"]: 1}
    with server.session() as session:
        visits = list(session.exec(select(Visit).where(Visit.child_id == caseload.children["Alfie"])))
    assert [server.opened(v).child_words for v in visits] == ["Once only"]


def test_a_batch_in_any_script_is_checked_and_logged_as_its_device_signed_it(seeded, servers, tmp_path):
    # The server checks the signature over each change as it encodes it, and seals those very bytes in the
    # change log: text beyond ASCII (escaped in the signed JSON) must come out as the worker typed it.
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[servers[0].url])
    ben.sync_once()
    words = "Zoë said “it’s calm here” — 🙂 and \u2028a new line"
    visit_id = add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], words)
    [pending] = [c for c in sync_node.pending_changes(ben.store) if c["record_id"] == visit_id]
    report = ben.sync_once()
    assert report.phase == Phase.idle and report.pushed == 1
    with server.session() as session:
        entry = session.exec(select(ChangeLog).where(ChangeLog.record_id == visit_id)).one()
        logged = server.open_payload("change_log", entry.change_id, entry.sealed)
        visit = session.get(Visit, visit_id)
        assert visit is not None and server.opened(visit).body.child_words == words
    assert logged == messages.Change.model_validate(pending).model_dump(mode="json")
    assert logged["body"]["child_words"] == words


def test_revoked_device_wipes_itself(seeded, servers, tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[servers[0].url])
    ben.sync_once()
    add_visit(ben.store, caseload.children["Alfie"], caseload.workers["ben"], "Never pushed")
    devices.revoke_device(server, sync_node.load_enrolment(ben.store).device_id)

    report = ben.sync_once()

    assert report.phase == Phase.wiped
    assert "revoked" in report.message
    assert ben.store.locked
    with ben.store.session() as session:
        assert session.exec(select(Child)).first() is None
        assert session.exec(select(Outbox)).first() is None
        assert session.exec(select(KeyringEntry)).first() is None  # the data key is gone


def test_reallocated_child_leaves_the_old_workers_device(seeded, servers, tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[servers[0].url])
    chloe = enrol(server, node(tmp_path, "chloe"), "chloe", caseload, urls=[servers[1].url])
    ben.sync_once()
    chloe.sync_once()
    bella = caseload.children["Bella"]
    with server.session() as session:  # the manager reallocates Bella to chloe on the hosted app
        child = session.get(Child, bella)
        child.worker_id = caseload.workers["chloe"]
        server.outbox_enabled = True
        server.write(session, child, server.opened(child).body, action="allocate", changed=["worker_id"])

    assert ben.sync_once().removed == 1
    chloe.sync_once()
    with ben.store.session() as session:
        assert session.get(Child, bella) is None
        assert session.exec(select(CarePlanAction).where(CarePlanAction.child_id == bella)).first() is None
    with chloe.store.session() as session:
        assert chloe.store.opened(session.get(Child, bella)).first_name == "Bella"
        assert session.get(Child, bella).worker_id == caseload.workers["chloe"]


def test_two_server_processes_on_one_postgresql(seeded, servers, tmp_path):
    server, caseload = seeded
    urls = [s.url for s in servers]
    rng = random.Random(7)
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=urls)
    amara = enrol(server, node(tmp_path, "amara"), "amara", caseload, urls=urls)
    ben.rng = amara.rng = rng
    ben.sync_once()
    amara.sync_once()
    made: list[str] = []
    for round_ in range(6):
        for client, who in ((ben, "ben"), (amara, "amara")):
            add_visit(client.store, caseload.children["Alfie"], caseload.workers[who], f"{who} {round_}")
            edit_action(client.store, caseload.actions["Bella"], outcome=f"{who} {round_}")
            made += [c["change_id"] for c in sync_node.pending_changes(client.store)[-2:]]
            assert client.sync_once().phase == Phase.idle
    for client in (ben, amara, ben):
        client.sync_once()
    counts = log_counts(server, caseload)
    assert all(counts.get(change_id) == 1 for change_id in made)
    ben_children = [caseload.children["Alfie"], caseload.children["Bella"]]
    assert child_state(ben.store, ben_children) == child_state(amara.store, ben_children)
    assert child_state(ben.store, ben_children) == child_state(server, ben_children)
    with server.session() as session:
        assert len(list(session.exec(select(Visit).where(Visit.child_id == caseload.children["Alfie"])))) == 12
        on_server = {c.id for c in session.exec(select(Conflict).where(
            col(Conflict.child_id).in_(list(caseload.children.values()))))}
    for client in (ben, amara):
        with client.store.session() as session:
            assert {c.id for c in session.exec(select(Conflict))} == on_server


# A batch of 60 visits is copied in (storage.sync.bulk.copy_rows); one of 20 goes in statements.
@pytest.mark.parametrize("visits", [20, 60], ids=["in statements", "copied"])
def test_same_batch_pushed_to_both_servers_at_once_is_held_once_and_the_audit_chain_holds(seeded, servers,
                                                                                          tmp_path, visits):
    assert (visits >= bulk.COPY_FROM) == (visits == 60)
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[servers[0].url])
    assert ben.sync_once().phase == Phase.idle
    enrolment = sync_node.load_enrolment(ben.store)
    headers = {"Authorization": f"Bearer {enrolment.token}"}
    for i in range(visits):
        add_visit(ben.store, caseload.children["Alfie" if i % 2 else "Bella"], caseload.workers["ben"], f"visit {i}")
    edit_action(ben.store, caseload.actions["Alfie"], outcome="Raced")
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in sync_node.pending_changes(ben.store)]
    batch_id = str(uuid.uuid4())
    batch = {"batch_id": batch_id, "changes": wire,
             "signature": messages.batch_signature(messages.token_key(enrolment.token), batch_id, wire)}

    # Both servers merge the batch without the push lock: one commits, the other finds it held.
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda s: httpx.post(f"{s.url}/api/sync/push", json=batch, headers=headers,
                                                     timeout=120), servers))
    assert [a.status_code for a in answers] == [200, 200], [a.text[:200] for a in answers]
    ids = [c["change_id"] for c in wire]
    assert sorted(answers[0].json()["applied"] + answers[1].json()["applied"]) == sorted(ids)
    assert sorted(answers[0].json()["duplicates"] + answers[1].json()["duplicates"]) == sorted(ids)
    assert log_counts(server, caseload) == {change_id: 1 for change_id in ids}
    with server.session() as session:
        assert audit.verify(session).ok
        action = session.get(CarePlanAction, caseload.actions["Alfie"])
        assert server.opened(action).outcome == "Raced"


def test_a_fresh_node_is_sent_each_record_once_and_an_unchanged_directory_not_again(seeded, servers, tmp_path):
    server, caseload = seeded
    with server.session() as session:
        ben = session.get(Worker, caseload.workers["ben"])
    server.outbox_enabled = True  # a visit written on the hosted app reaches the change log
    add_visit(server, caseload.children["Alfie"], caseload.workers["ben"], "Written on the hosted app")
    server.outbox_enabled = False
    first = sync_pull.pull_page(server, ben, cursor=0, held=[], child_ids=None)
    assert {c["kind"] for c in first.changes} >= {"child", "care_plan", "care_plan_action", "visit"}
    assert not first.more
    assert first.cursor == server_log.latest_seq(server)  # the children came whole: the log is not replayed
    assert first.directory["workers"] and first.directory_version
    held = [caseload.children["Alfie"], caseload.children["Bella"]]
    again = sync_pull.pull_page(server, ben, cursor=first.cursor, held=held, child_ids=None,
                                 directory_version=first.directory_version)
    assert again.changes == [] and again.directory == {} and again.directory_version == first.directory_version
    own = next(w for w in first.directory["workers"] if w["id"] == ben.id)
    others = [w for w in first.directory["workers"] if w["id"] != ben.id]
    assert own["password_hash"] and not any(w["password_hash"] for w in others)

    # A node that holds a child with changes it lacks still gets them when a new child arrives whole.
    visit = add_visit_on_server(server, caseload, "Alfie")
    with_new = sync_pull.pull_page(server, ben, cursor=first.cursor, held=[caseload.children["Alfie"]],
                                    child_ids=None)
    assert [c["record_id"] for c in with_new.changes if c["kind"] == "child"] == [caseload.children["Bella"]]
    assert with_new.cursor == first.cursor
    rest = sync_pull.pull_page(server, ben, cursor=with_new.cursor, held=held, child_ids=None)
    assert visit in {c["record_id"] for c in rest.changes}

    # A directory change is sent: a new version, with the new worker.
    with server.session() as session:
        session.add(Worker(username="new-" + uuid.uuid4().hex[:6], display_name="New", team_id=ben.team_id))
    changed = sync_pull.pull_page(server, ben, cursor=rest.cursor, held=held, child_ids=None,
                                   directory_version=first.directory_version)
    assert changed.directory_version != first.directory_version
    assert len(changed.directory["workers"]) == len(first.directory["workers"]) + 1

    # So is an edit to a worker already there (the same number of rows, one of them rewritten).
    with server.session() as session:
        chloe = session.get(Worker, caseload.workers["chloe"])
        assert chloe is not None
        chloe.display_name = "Chloe Renamed"
        session.add(chloe)
    renamed = sync_pull.pull_page(server, ben, cursor=changed.cursor, held=held, child_ids=None,
                                   directory_version=changed.directory_version)
    assert renamed.directory_version not in (first.directory_version, changed.directory_version)
    assert {w["display_name"] for w in renamed.directory["workers"] if w["id"] == chloe.id} == {"Chloe Renamed"}


def add_visit_on_server(server: Store, caseload: Caseload, child: str) -> str:
    server.outbox_enabled = True
    try:
        return add_visit(server, caseload.children[child], caseload.workers["ben"], "Later, on the hosted app")
    finally:
        server.outbox_enabled = False


def test_the_last_batch_and_the_first_pull_go_in_one_request(seeded, servers, tmp_path):
    """`/api/sync/sync`: the push and the pull after it in one request and one transaction (issue 19). The page
    holds what the batch did (its conflicts too) as a pull sent after it would; a batch altered on the way
    refuses the whole request, nothing applied and nothing pulled."""
    server, caseload = seeded
    url = servers[0].url
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[url])
    amara = enrol(server, node(tmp_path, "amara"), "amara", caseload, urls=[url])
    assert ben.sync_once().phase == Phase.idle and amara.sync_once().phase == Phase.idle
    action = caseload.actions["Alfie"]
    edit_action(ben.store, action, outcome="Contact arranged for Saturdays")
    assert ben.sync_once().phase == Phase.idle
    edit_action(amara.store, action, outcome="Contact paused pending review")
    add_visit(amara.store, caseload.children["Alfie"], caseload.workers["amara"], "Seen at school")

    enrolment = sync_node.load_enrolment(amara.store)
    headers = {"Authorization": f"Bearer {enrolment.token}"}
    changes = sync_node.pending_changes(amara.store)
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
    batch_id = str(uuid.uuid4())
    batch = {"batch_id": batch_id, "changes": wire,
             "signature": messages.batch_signature(messages.token_key(enrolment.token), batch_id, wire)}
    wanted = {"cursor": sync_node.cursor(amara.store), "held": sync_node.held_children(amara.store),
              "directory_version": sync_node.directory_version(amara.store),
              "holds": sync_node.holds(amara.store, taking=[c["change_id"] for c in changes])}
    assert wanted["holds"]["waiting"] == 0

    tampered = {**batch, "changes": [{**wire[0], "record_id": wire[0]["record_id"] + "x"}, *wire[1:]]}
    refused = httpx.post(f"{url}/api/sync/sync", json={"push": tampered, "pull": wanted}, headers=headers, timeout=60)
    assert refused.status_code == 400 and refused.json()["code"] == "tampered"
    assert all(c["change_id"] not in log_counts(server, caseload) for c in wire)

    answer = httpx.post(f"{url}/api/sync/sync", json={"push": batch, "pull": wanted}, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    pushed, page = answer.json()["push"], answer.json()["pull"]
    assert sorted(pushed["applied"]) == sorted(c["change_id"] for c in wire) and pushed["conflicts"] == 1
    kinds = [c["kind"] for c in page["changes"]]
    assert "conflict" in kinds and kinds.count("care_plan_action") == 2  # ben's edit, then amara's own
    assert page["cursor"] == pushed["cursor"] and not page["more"]
    with server.session() as session:
        device = session.get(Device, enrolment.device_id)
        assert (device.waiting, device.set_aside) == (0, 0)  # the holds as they are once the batch is taken

    # A pull of some children only goes alone.
    only = httpx.post(f"{url}/api/sync/sync", headers=headers, timeout=60,
                      json={"push": batch, "pull": {**wanted, "child_ids": [caseload.children["Alfie"]]}})
    assert only.status_code == 400 and "/pull" in only.json()["message"]

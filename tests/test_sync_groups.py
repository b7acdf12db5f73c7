"""Several devices' pushes applied in one transaction (issue 19 part 5): each as it would be alone.

When many devices sync at once, the server applies the pushes waiting at the same time as one group: one lock,
one numbering of the change log, one extension of the audit chain, one commit (`storage.sync.push.push_group`,
`pwa.sync.server._Groups`). What each device is told, and what the server holds afterwards, must be what applying
each batch alone gives: refusals, duplicates and the audit trail included. On PostgreSQL, against the real server.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from pwa.sync import messages, server
from pwa.sync.client import SyncClient
from pwa.sync.server import PREFIX
from storage import audit
from storage.models import AuditEvent, ChangeLog, Visit
from storage.store import Store
from storage.sync import bulk
from storage.sync import node as sync_node
from storage.sync import push as sync_push
from storage.sync.refusal import SyncRefused
from tests.sync_support import Caseload, add_visit, device, log_counts

pytestmark = pytest.mark.postgres


def batch_of(client: SyncClient, limit: int = 100) -> sync_push.Pushed:
    """The device's waiting changes as the server receives a batch of them (marked sent on the device)."""
    enrolment = sync_node.load_enrolment(client.store)
    assert enrolment is not None
    changes = sync_node.pending_changes(client.store, limit)
    sync_node.mark_pushed(client.store, [c["change_id"] for c in changes])
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
    return sync_push.Pushed(messages.token_key(enrolment.token), str(uuid.uuid4()), wire,
                            [messages.encode_change(c) for c in wire])


def devices_with_visits(server: Store, caseload: Caseload, server_url: str, tmp_path: Any,
                        visits: int = 3) -> dict[str, tuple[SyncClient, list[str]]]:
    """ben, chloe and erin's laptops, each with new visits for their first child, not yet sent."""
    out = {}
    for username, child in (("ben", "Alfie"), ("chloe", "Caleb"), ("erin", "Daisy")):
        client = device(server, caseload, server_url, tmp_path, username)
        out[username] = (client, [add_visit(client.store, caseload.children[child], caseload.workers[username],
                                            f"{username} visit {i}") for i in range(visits)])
    return out


def moments(server: Store, *batches: sync_push.Pushed) -> set[Any]:
    """When the server applied these batches' changes: one moment if they went in one transaction."""
    with server.session() as session:
        return set(session.exec(select(ChangeLog.applied_at).where(
            col(ChangeLog.batch_id).in_([b.batch_id for b in batches]))))


def chain_ok(server: Store) -> None:
    with server.session() as session:
        verdict = audit.verify(session)
    assert verdict.ok, verdict


# The change log's rows, the audit events and the chain's head go in one statement; rows too many for one go
# one statement a table (here, any: no statement may hold more than 10 values); many rows are copied (here, any
# from one). Every way, the same outcome.
@pytest.mark.parametrize(("max_parameters", "copy_from"), [(bulk.MAX_PARAMETERS, bulk.COPY_FROM), (10, bulk.COPY_FROM),
                                                           (bulk.MAX_PARAMETERS, 1)],
                         ids=["one statement", "one a table", "copied"])
def test_a_group_applies_each_devices_batch_as_alone_numbered_in_order(seeded, server_url, tmp_path, monkeypatch,
                                                                      max_parameters, copy_from):
    monkeypatch.setattr(bulk, "MAX_PARAMETERS", max_parameters)
    monkeypatch.setattr(bulk, "COPY_FROM", copy_from)
    server, caseload = seeded
    laptops = devices_with_visits(server, caseload, server_url, tmp_path)
    pushed = [batch_of(client) for client, _visits in laptops.values()]

    outcomes = sync_push.push_group(server, pushed)

    for outcome, one, (_client, visits) in zip(outcomes, pushed, laptops.values(), strict=True):
        assert isinstance(outcome, sync_push.PushOutcome)
        assert outcome.applied == [c["change_id"] for c in one.changes] and not outcome.refused
        assert len(visits) == 3
    with server.session() as session:
        for _client, visits in laptops.values():
            assert all(session.get(Visit, v) is not None for v in visits)
        logged = {row.change_id: row for row in session.exec(
            select(ChangeLog).where(col(ChangeLog.batch_id).in_([p.batch_id for p in pushed])))}
        # Each change once, each device's in its own batch, the batches numbered one after the other in order.
        seqs = [[logged[c["change_id"]].seq for c in one.changes] for one in pushed]
        assert all(logged[c["change_id"]].batch_id == one.batch_id for one in pushed for c in one.changes)
        assert seqs[0] == sorted(seqs[0]) and max(seqs[0]) < min(seqs[1]) and max(seqs[1]) < min(seqs[2])
        # Applied in one transaction (one moment for all), not one after the other.
        assert len({row.applied_at for row in logged.values()}) == 1
        # Each device's cursor is its own batch's last number, as when applied alone.
        assert [o.cursor for o in outcomes if isinstance(o, sync_push.PushOutcome)] == [max(s) for s in seqs]
        synced = session.exec(select(AuditEvent).where(AuditEvent.action == "sync",
                                                       col(AuditEvent.record_id).in_(
                                                           [v for _c, vs in laptops.values() for v in vs]))).all()
        assert len(synced) == 9 and {e.device_id for e in synced} == {
            logged[c["change_id"]].device_id for one in pushed for c in one.changes}
    chain_ok(server)
    # The devices then pull what the server holds: each its own visits, and nothing twice.
    for client, _visits in laptops.values():
        assert client.sync_once().pushed == 0
    assert all(n == 1 for n in log_counts(server, caseload).values())


def test_a_refused_change_in_a_group_is_refused_as_alone_and_audited_once(seeded, server_url, tmp_path):
    server, caseload = seeded
    laptops = devices_with_visits(server, caseload, server_url, tmp_path, visits=2)
    ben, chloe, erin = (batch_of(client) for client, _visits in laptops.values())
    # chloe's batch also carries a visit for erin's child (not on her caseload or team): that change is refused.
    stray = add_visit(laptops["chloe"][0].store, caseload.children["Caleb"], caseload.workers["chloe"], "stray")
    poisoned = batch_of(laptops["chloe"][0])
    change = dict(poisoned.changes[0])
    change["fields"] = {**change["fields"], "child_id": caseload.children["Daisy"]}
    chloe = sync_push.Pushed(chloe.key, chloe.batch_id, [*chloe.changes, change],
                             [*(chloe.encoded or []), messages.encode_change(change)])

    outcomes = sync_push.push_group(server, [ben, chloe, erin])

    ben_out, chloe_out, erin_out = outcomes
    assert isinstance(ben_out, sync_push.PushOutcome) and len(ben_out.applied) == 2
    assert isinstance(erin_out, sync_push.PushOutcome) and len(erin_out.applied) == 2
    assert isinstance(chloe_out, sync_push.PushOutcome)
    assert len(chloe_out.applied) == 2 and list(chloe_out.refused) == [change["change_id"]]
    assert "not on this worker's caseload" in chloe_out.refused[change["change_id"]]
    with server.session() as session:
        assert session.get(Visit, stray) is None
        denied = session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                       AuditEvent.record_id == stray)).all()
    assert len(denied) == 1  # audited once: not once by the group and again alone
    # chloe's batch went in alone; ben's and erin's were grouped again without it.
    assert len(moments(server, ben, erin)) == 1 and not moments(server, ben, erin) & moments(server, chloe)
    assert all(n == 1 for n in log_counts(server, caseload).values())
    chain_ok(server)


def test_a_device_refused_whole_in_a_group_leaves_the_others_applied(seeded, server_url, tmp_path):
    server, caseload = seeded
    laptops = devices_with_visits(server, caseload, server_url, tmp_path, visits=1)
    ben, chloe, erin = (batch_of(client) for client, _visits in laptops.values())
    unknown = sync_push.Pushed("0" * 64, str(uuid.uuid4()), chloe.changes, chloe.encoded)
    # The same batch sent twice at once (a retry crossing the first): the second is told it is held already.
    outcomes = sync_push.push_group(server, [ben, unknown, erin, erin])

    assert isinstance(outcomes[1], SyncRefused) and "not enrolled" in outcomes[1].message
    first, again = outcomes[2], outcomes[3]
    assert isinstance(first, sync_push.PushOutcome) and isinstance(again, sync_push.PushOutcome)
    assert len(first.applied) == 1 and again.duplicates == first.applied and not again.applied
    assert isinstance(outcomes[0], sync_push.PushOutcome) and len(outcomes[0].applied) == 1
    with server.session() as session:
        assert session.get(Visit, laptops["chloe"][1][0]) is None
    assert len(moments(server, ben, erin)) == 1  # the others still went in together
    chain_ok(server)


def test_devices_syncing_at_once_through_the_server_each_get_their_own_answer(seeded, server_url, tmp_path):
    """Twelve devices post their batches with their pulls at the same moment: the real server groups what
    arrives together; every device is told its own changes were applied and its pull holds its own child."""
    server, caseload = seeded
    laptops = devices_with_visits(server, caseload, server_url, tmp_path, visits=1)
    senders: list[tuple[str, dict[str, Any], list[str]]] = []
    for username, (client, _visits) in laptops.items():
        enrolment = sync_node.load_enrolment(client.store)
        assert enrolment is not None
        for n in range(4):  # four devices each: the laptop's enrolment, as four phones of the worker would be
            child = {"ben": "Alfie", "chloe": "Caleb", "erin": "Daisy"}[username]
            visit = add_visit(client.store, caseload.children[child], caseload.workers[username], f"phone {n}")
            one = batch_of(client)
            body = {"push": {"batch_id": one.batch_id, "changes": one.changes,
                             "signature": messages.batch_signature(one.key, one.batch_id, one.changes)},
                    "pull": {"cursor": 0, "held": [], "limit": 200, "directory_version": ""}}
            senders.append((enrolment.token, body, [visit]))
    answers: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(senders)
    go = threading.Barrier(len(senders))

    def send(i: int) -> None:
        token, body, _ = senders[i]
        with httpx.Client(timeout=120) as http:
            go.wait()
            response = http.post(f"{server_url}{PREFIX}/sync", json=body, headers={"Authorization": f"Bearer {token}"})
            answers[i] = (response.status_code, response.json())

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for (status, answer), (_token, body, visits) in zip(answers, senders, strict=True):
        assert status == 200, answer
        assert answer["push"]["applied"] == [c["change_id"] for c in body["push"]["changes"]]
        pulled = {c["record_id"] for c in answer["pull"]["changes"]}
        assert set(visits) <= pulled  # its pull, after its push, holds what it just sent
    with server.session() as session:
        for _token, _body, visits in senders:
            assert session.get(Visit, visits[0]) is not None
    assert all(n == 1 for n in log_counts(server, caseload).values())
    chain_ok(server)


async def test_a_push_sent_as_the_last_group_ends_is_still_applied(monkeypatch):
    """A device whose answer comes back sends its next batch at once: the worker that answered it is leaving,
    and must not be counted as there to take the new one (the push would wait for a worker that has gone)."""
    monkeypatch.setattr(server, "GROUP_WORKERS", 1)

    async def applied(_fn: Any, _store: Any, pushed: list[sync_push.Pushed]) -> list[sync_push.PushOutcome]:
        await asyncio.sleep(0)
        return [sync_push.PushOutcome(applied=[one.batch_id]) for one in pushed]

    monkeypatch.setattr(server, "run_in_threadpool", applied)
    monkeypatch.setattr(server.state, "store", lambda: None)
    groups = server._Groups()
    async with asyncio.timeout(5):  # in this task: the second push is added in the step the first is answered
        first = await groups.apply(sync_push.Pushed("key", "first", []))
        second = await groups.apply(sync_push.Pushed("key", "second", []))
    assert first.applied == ["first"] and second.applied == ["second"]

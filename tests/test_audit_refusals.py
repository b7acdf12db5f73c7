"""Refusals at the sync API's door are in the audit trail, and what a device sends of its own trail is held to
its worker and the children they may see: a real `seen server` on loopback and the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import col, select

from pwa.sync import messages
from storage import audit
from storage.audit_trail import TrailFilter, read_trail
from storage.models import AuditEvent, Worker
from storage.store import Store
from storage.sync import devices
from storage.sync import node as sync_node
from tests.sync_support import Caseload, enrol, new_store


def denied(store: Store, kind: str, record_id: str) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == "denied", AuditEvent.kind == kind,
                                                          AuditEvent.record_id == record_id)))


def post(url: str, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/api/sync{path}", json=body, headers=headers, timeout=120)


def signed_batch(token: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
    batch_id = str(uuid.uuid4())
    return {"batch_id": batch_id, "changes": changes,
            "signature": messages.batch_signature(messages.token_key(token), batch_id, changes)}


def test_unknown_and_revoked_tokens_altered_batches_and_code_guesses_are_refused_and_audited(
        seeded: tuple[Store, Caseload], server_url: str, tmp_path: Path) -> None:
    server, caseload = seeded
    # An enrolment code guessed: refused, and the guess (from where, never the code) is in the trail.
    with server.session() as session:
        before = len(session.exec(select(AuditEvent).where(AuditEvent.kind == "enrolment_code")).all())
    guess = post(server_url, "/enrol", {"code": "ABCDE-23456", "device_name": "guess"})
    assert guess.status_code == 400 and guess.json()["code"] == "bad_code"
    guesses = denied(server, "enrolment_code", "enrol")
    assert len(guesses) == before + 1 and guesses[-1].detail == "not valid from 127.0.0.1"

    # A token the server never issued.
    token = "not-a-token-" + uuid.uuid4().hex
    unknown = post(server_url, "/push", signed_batch(token, []), token)
    assert unknown.status_code == 401 and unknown.json()["code"] == "unknown_device"
    assert denied(server, "device_token", f"token-{messages.token_key(token)[:12]}")

    # A batch altered on the way: refused whole, and the device named in the trail.
    ben = enrol(server, new_store(f"sqlite:///{tmp_path / 'ben.db'}"), "ben", caseload, urls=[server_url])
    enrolment = sync_node.load_enrolment(ben.store)
    assert enrolment is not None
    batch = signed_batch(enrolment.token, [])
    batch["signature"] = "0" * 64
    altered = post(server_url, "/push", batch, enrolment.token)
    assert altered.status_code == 400 and altered.json()["code"] == "tampered"
    [event] = denied(server, "sync", batch["batch_id"])
    assert (event.worker_id, event.device_id, event.detail) == (caseload.workers["ben"], enrolment.device_id,
                                                                "bad signature")

    # A revoked device's token: refused, told to wipe, and traced to the device.
    devices.revoke_device(server, enrolment.device_id, by=caseload.workers["admin"])
    revoked = post(server_url, "/pull", {"cursor": 0}, enrolment.token)
    assert revoked.status_code == 403 and revoked.json()["wipe"] is True
    [event] = denied(server, "device_token", enrolment.device_id)
    assert (event.worker_id, event.detail) == (caseload.workers["ben"], "revoked device")
    with server.session() as session:
        assert audit.verify(session).ok


def upload(enrolment: sync_node.Enrolment, events: list[dict[str, Any]]) -> httpx.Response:
    wire = [messages.AuditEventUpload.model_validate(e).model_dump(mode="json") for e in events]
    batch_id = str(uuid.uuid4())
    return post(enrolment.server_url, "/audit", {
        "batch_id": batch_id, "events": wire,
        "signature": messages.audit_signature(messages.token_key(enrolment.token), batch_id, wire)}, enrolment.token)


def event(**fields: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "at": datetime.now(UTC).isoformat(), "action": "read", "kind": "visit",
            "record_id": "v-" + uuid.uuid4().hex[:8], **fields}


def test_a_device_speaks_only_of_its_worker_and_their_children_and_backdated_events_show(
        seeded: tuple[Store, Caseload], server_url: str, tmp_path: Path) -> None:
    server, caseload = seeded
    ben = enrol(server, new_store(f"sqlite:///{tmp_path / 'ben.db'}"), "ben", caseload, urls=[server_url])
    enrolment = sync_node.load_enrolment(ben.store)
    assert enrolment is not None
    alfie, caleb = caseload.children["Alfie"], caseload.children["Caleb"]  # ben's; chloe's

    # A made-up read of chloe's child (by child_id, or as the child record itself): refused whole, audited.
    for forged in (event(child_id=caleb), event(kind="child", record_id=caleb)):
        honest = event(child_id=alfie, worker_id=caseload.workers["ben"])
        refused = upload(enrolment, [honest, forged])
        assert refused.status_code == 403, refused.text
        assert refused.json()["change_ids"] == [forged["id"]]
        assert "a child this worker may not see" in refused.json()["message"]
        assert "None of the upload was recorded" in refused.json()["message"]
    with server.session() as session:
        held = session.exec(select(AuditEvent).where(col(AuditEvent.origin).startswith(enrolment.device_id))).all()
    assert held == []
    with server.session() as session:
        refusals = session.exec(select(AuditEvent).where(AuditEvent.action == "denied", AuditEvent.kind == "audit",
                                                         AuditEvent.device_id == enrolment.device_id)).all()
    assert len(refusals) == 2

    # A refusal on the node (the worker tried a child not theirs) is recorded: it is evidence, not access.
    # An event naming no worker is recorded as the device's worker's. One a day old shows as backdated.
    tried = event(action="denied", kind="child", record_id=caleb)
    unnamed = event(child_id=alfie)
    late = event(child_id=alfie, worker_id=caseload.workers["ben"],
                 at=(datetime.now(UTC) - timedelta(days=1)).isoformat())
    accepted = upload(enrolment, [tried, unnamed, late])
    assert accepted.status_code == 200, accepted.text
    with server.session() as session:
        held = {e.origin.split(":")[1]: e for e in session.exec(  # type: ignore[union-attr]
            select(AuditEvent).where(col(AuditEvent.origin).startswith(enrolment.device_id)))}
        assert audit.verify(session).ok
    assert {e.worker_id for e in held.values()} == {caseload.workers["ben"]}
    assert all(e.received_at is not None for e in held.values())
    assert held[late["id"]].backdated and not held[unnamed["id"]].backdated and not held[tried["id"]].backdated
    # The child's trail, as their manager reads it, says which event the device backdated.
    with server.session() as session:
        amara = session.get(Worker, caseload.workers["amara"])
    trail = {line.seq: line for line in read_trail(server, amara, TrailFilter(child_id=alfie)).lines}
    assert any(note.startswith("The device sent it later") for note in trail[held[late["id"]].seq].notes)
    assert not any(note.startswith("The device sent it later") for note in trail[held[unnamed["id"]].seq].notes)

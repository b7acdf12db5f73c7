"""Photos and audit events through sync: a real `seen server` on loopback and the real PostgreSQL, and the
all-in-one server (its ASGI app on SQLite, in-process)."""

from __future__ import annotations

import base64
import io
import os
import uuid
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlmodel import col, select

from pwa import state
from pwa.sync import messages
from pwa.sync.client import Phase
from pwa.sync.server import build_app
from storage import audit
from storage.life_story import add_life_story_entry, correct_life_story_entry, life_story_book
from storage.models import AuditEvent, Outbox, Photo, RecordStamp, SyncState, Worker
from storage.photos import open_photo, prepare_photo
from storage.store import NotAllowed, Store
from storage.sync import changes as sync_changes
from storage.sync import node as sync_node
from storage.wishes import wishes_for_child
from tests.sync_support import (
    add_visit,
    enrol,
    log_counts,
    new_store,
    seed,
    state_of,
)

with warnings.catch_warnings():  # starlette suggests httpx2; the test client works as it is
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TODAY = date(2026, 11, 23)
ENTRY = {"on": "2026-11-01", "section": "family", "title": "A day at the beach", "text": "We built a castle."}


def node(tmp_path: Path, name: str) -> Store:
    return new_store(f"sqlite:///{tmp_path / f'{name}-{uuid.uuid4().hex[:6]}.db'}")


def photo(colour: tuple[int, int, int], size: tuple[int, int] = (320, 240), *, noise: bool = False) -> bytes:
    """A photo as Seen stores it (prepared: a JPEG); `noise` makes one as big as a prepared photo gets."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return prepare_photo(out.getvalue())


def worker_on(store: Store, worker_id: str) -> Worker:
    with store.session() as session:
        found = session.get(Worker, worker_id)
    assert found is not None
    return found


def images_of(store: Store, entry_id: str) -> list[bytes]:
    """The images of a life-story entry's photos on a store, opened (sorted: photos added together have no order)."""
    with store.session() as session:
        photos = session.exec(select(Photo).where(Photo.record_id == entry_id))
        return sorted(open_photo(store, p) for p in photos)


def signed(enrolment: sync_node.Enrolment, changes: list[dict[str, Any]]) -> dict[str, Any]:
    wire = [messages.Change.model_validate(c).model_dump(mode="json") for c in changes]
    batch_id = str(uuid.uuid4())
    return {"batch_id": batch_id, "changes": wire,
            "signature": messages.batch_signature(messages.token_key(enrolment.token), batch_id, wire)}


# ------------------------------------------------------------------------------------------------ photos


def test_a_photo_added_offline_reaches_the_server_and_another_node_with_the_same_bytes(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[server_url])
    amara = enrol(server, node(tmp_path, "amara"), "amara", caseload, urls=[server_url])
    assert ben.sync_once().phase == amara.sync_once().phase == Phase.idle
    alfie = caseload.children["Alfie"]
    beach, pier = photo((200, 160, 40)), photo((20, 90, 200))

    # Offline on ben's laptop: an entry with two photos.
    entry = add_life_story_entry(ben.store, worker_on(ben.store, caseload.workers["ben"]), alfie, ENTRY,
                                 [beach, pier], today=TODAY)
    report = ben.sync_once()
    assert report.phase == Phase.idle and report.pushed == 3 and report.refused == 0, report.message

    both = sorted([beach, pier])
    assert images_of(server, entry.id) == both
    assert amara.sync_once().phase == Phase.idle
    assert images_of(amara.store, entry.id) == both
    book = life_story_book(amara.store, worker_on(amara.store, caseload.workers["amara"]), alfie)
    assert sorted(book.photos.values()) == both

    # A node enrolled afterwards receives the child whole, photos and all.
    fresh = enrol(server, node(tmp_path, "amara-phone"), "amara", caseload, urls=[server_url], name="phone")
    assert fresh.sync_once().phase == Phase.idle
    assert images_of(fresh.store, entry.id) == both

    # Ben corrects the entry, keeping the pier photo and adding one: the new entry's photos sync too.
    sunset = photo((240, 90, 60))
    keep = [p.id for p in _photos(ben.store, entry.id) if open_photo(ben.store, p) == pier]
    corrected = correct_life_story_entry(
        ben.store, worker_on(ben.store, caseload.workers["ben"]), alfie, entry.id, {**ENTRY, "title": "The pier"},
        keep, [sunset], today=TODAY)
    assert ben.sync_once().phase == Phase.idle
    for client in (amara, fresh):
        assert client.sync_once().phase == Phase.idle
    for store in (server, amara.store, fresh.store):
        assert images_of(store, corrected.id) == sorted([pier, sunset])
        assert images_of(store, entry.id) == both  # the old entry keeps its own
    ben_children = [alfie, caseload.children["Bella"]]
    states = [{k: v for k, v in state_of(s).items() if v[0].get("child_id", v[0].get("id")) in ben_children}
              for s in (ben.store, amara.store, fresh.store, server)]
    assert states[0] == states[1] == states[2] == states[3]
    assert sum(1 for k in states[0] if k.startswith("photo:")) == 4


def _photos(store: Store, entry_id: str) -> list[Photo]:
    with store.session() as session:
        return list(session.exec(select(Photo).where(Photo.record_id == entry_id)))


@pytest.mark.parametrize(("damage", "words"), [
    (lambda image: None, "came without its image"),
    (lambda image: "not base64 at all!", "not valid base64"),
    (lambda image: base64.b64encode(b"<html><script>alert(1)</script></html>").decode(), "not a JPEG or PNG"),
    (lambda image: base64.b64encode(b"\x89PNG\r\n\x1a\n" + image[3:]).decode(), "its image is image/png"),
    (lambda image: "A" * (6 * 1024 * 1024), "too big to sync"),
])
def test_a_damaged_or_missing_image_is_refused_and_nothing_in_its_batch_applied(seeded, server_url, tmp_path,
                                                                               damage, words):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[server_url])
    assert ben.sync_once().phase == Phase.idle
    alfie = caseload.children["Alfie"]
    image = photo((10, 200, 10))
    add_visit(ben.store, alfie, caseload.workers["ben"], "Fine")
    entry = add_life_story_entry(ben.store, worker_on(ben.store, caseload.workers["ben"]), alfie, ENTRY,
                                 [image], today=TODAY)
    changes = sync_node.pending_changes(ben.store)
    assert [c["kind"] for c in changes] == ["visit", "life_story", "photo"]
    assert base64.b64decode(changes[2]["body"]["image"]) == image  # the outbox holds the image itself
    changes[2] = {**changes[2], "body": {"image": damage(image)}}
    enrolment = sync_node.load_enrolment(ben.store)

    answer = httpx.post(f"{server_url}/api/sync/push", json=signed(enrolment, changes), timeout=120,
                        headers={"Authorization": f"Bearer {enrolment.token}"})

    assert answer.status_code == 422, answer.text[:300]
    assert words in answer.json()["message"] and "Nothing in the batch was applied" in answer.json()["message"]
    assert log_counts(server, caseload) == {}
    assert images_of(server, entry.id) == [] and _photos(server, entry.id) == []


def test_batches_and_pages_stop_at_their_byte_budget_and_the_server_takes_a_full_one(seeded, server_url, tmp_path):
    server, caseload = seeded
    sizes: dict[str, list[int]] = {"push": [], "pull": []}

    def measure(response: httpx.Response) -> None:
        path = response.request.url.path.rsplit("/", 1)[-1]
        if path in ("push", "sync"):  # /sync carries the last batch and answers with the first page
            sizes["push"].append(len(response.request.content))
        if path in ("pull", "sync"):
            sizes["pull"].append(len(response.read()))

    hooks = {"response": [measure]}
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[server_url],
                http=httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0), event_hooks=hooks))
    amara = enrol(server, node(tmp_path, "amara"), "amara", caseload, urls=[server_url],
                  http=httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0), event_hooks=hooks))
    for client in (ben, amara):
        client.batch_size, client.page_size = 100, 200  # counts far above what the budget lets through
        assert client.sync_once().phase == Phase.idle
    worker = worker_on(ben.store, caseload.workers["ben"])
    # Eight photos as big as Seen makes them (~1.8 MB each), in two entries: ~15 MB to sync.
    images = [photo((0, 0, 0), (1600, 1600), noise=True) for _ in range(8)]
    entries = [add_life_story_entry(ben.store, worker, caseload.children["Alfie"], ENTRY, images[i:i + 4],
                                    today=TODAY) for i in (0, 4)]
    biggest = max(len(base64.b64encode(i)) for i in images) + 2000
    first = sync_node.pending_changes(ben.store, 100)
    assert 1 < len(first) < 10
    sizes["push"].clear()

    assert ben.sync_once().phase == Phase.idle
    sizes["pull"].clear()
    assert amara.sync_once().phase == Phase.idle

    assert len(sizes["push"]) >= 4 and len(sizes["pull"]) >= 4
    assert max(sizes["push"]) <= sync_changes.MESSAGE_BYTES + biggest
    assert max(sizes["pull"]) <= sync_changes.MESSAGE_BYTES + biggest
    assert max(sizes["push"]) > sync_changes.MESSAGE_BYTES - biggest  # a batch near the budget was taken
    for entry, expected in zip(entries, (images[:4], images[4:]), strict=True):
        assert images_of(server, entry.id) == sorted(expected)
        assert images_of(amara.store, entry.id) == sorted(expected)


def test_photos_pushed_without_images_by_an_older_seen_are_sent_again_whole(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[server_url])
    assert ben.sync_once().phase == Phase.idle
    worker = worker_on(ben.store, caseload.workers["ben"])
    pushed, waiting = photo((90, 30, 30)), photo((30, 90, 30))
    entry = add_life_story_entry(ben.store, worker, caseload.children["Alfie"], ENTRY, today=TODAY)
    assert ben.sync_once().phase == Phase.idle
    # As an older Seen left things: one photo on the server without its image, one waiting in the outbox
    # with a change that carries none.
    with ben.store.session() as session:
        old = Photo(record_id=entry.id, child_id=entry.child_id)
        old.sealed = ben.store.sealer.seal_bytes("photo", old.id, pushed)
        ben.store.outbox_enabled = False
        ben.store.write(session, old, action="create")
        ben.store.outbox_enabled = True
        later = Photo(record_id=entry.id, child_id=entry.child_id)
        later.sealed = ben.store.sealer.seal_bytes("photo", later.id, waiting)
        ben.store.write(session, later, action="create")
        session.delete(session.get(SyncState, sync_node.PHOTOS_WHOLE))
    with server.session() as session:
        session.add(Photo(id=old.id, record_id=entry.id, child_id=entry.child_id, sealed=b""))
        session.add(RecordStamp(record_id=old.id, kind="photo", stamp="0"))
    assert not sync_node.pending_changes(ben.store)[0]["body"]

    report = ben.sync_once()

    assert report.phase == Phase.idle and report.refused == 0, report.message
    assert images_of(server, entry.id) == sorted([pushed, waiting])
    assert sync_node.send_photos_whole_once(ben.store) == 0  # once only
    with ben.store.session() as session:
        assert session.exec(select(Outbox)).first() is None


def test_photos_reach_the_all_in_one_servers_own_store_and_its_own_photos_reach_nodes(tmp_path):
    server = new_store(f"sqlite:///{tmp_path / 'server.db'}")
    caseload = seed(server)
    state.set_store(server)  # as `seen run` does: the hosted app's writes reach the log through the outbox
    http = TestClient(build_app())
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, http=http, urls=["http://testserver"])
    amara = enrol(server, node(tmp_path, "amara"), "amara", caseload, http=http, urls=["http://testserver"])
    assert ben.sync_once().phase == amara.sync_once().phase == Phase.idle
    from_node, from_app = photo((120, 40, 160)), photo((40, 160, 120))
    alfie = caseload.children["Alfie"]
    on_node = add_life_story_entry(ben.store, worker_on(ben.store, caseload.workers["ben"]), alfie,
                                   ENTRY, [from_node], today=TODAY)
    on_app = add_life_story_entry(server, worker_on(server, caseload.workers["ben"]), alfie,
                                  {**ENTRY, "title": "On the phone"}, [from_app], today=TODAY)

    assert ben.sync_once().phase == Phase.idle
    assert amara.sync_once().phase == Phase.idle

    assert images_of(server, on_node.id) == [from_node]
    for store in (ben.store, amara.store):
        assert images_of(store, on_app.id) == [from_app]
    assert images_of(amara.store, on_node.id) == [from_node]
    server.engine.dispose()


# ------------------------------------------------------------------------------------------------ audit


def events_from(store: Store, device_id: str) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).where(col(AuditEvent.origin).startswith(f"{device_id}:"))
                                 .order_by(col(AuditEvent.seq))))


def node_events(store: Store) -> list[AuditEvent]:
    with store.session() as session:
        return list(session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))))


def audit_upload(enrolment: sync_node.Enrolment, events: list[dict[str, Any]],
                 extra: dict[str, Any] | None = None) -> httpx.Response:
    """Posts an upload of audit events signed with the device's token; `extra` fields go unsigned."""
    wire = [messages.AuditEventUpload.model_validate(e).model_dump(mode="json") for e in events]
    batch_id = str(uuid.uuid4())
    body = {"batch_id": batch_id, "events": [{**e, **(extra or {})} for e in wire],
            "signature": messages.audit_signature(messages.token_key(enrolment.token), batch_id, wire)}
    return httpx.post(f"{enrolment.server_url}/api/sync/audit", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {enrolment.token}"})


def test_what_a_worker_read_offline_reaches_the_servers_audit_trail_once_with_the_device(seeded, server_url,
                                                                                         tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[server_url])
    assert ben.sync_once().phase == Phase.idle
    device = sync_node.load_enrolment(ben.store).device_id
    worker = worker_on(ben.store, caseload.workers["ben"])
    alfie = caseload.children["Alfie"]

    # Offline: ben reads Alfie's wishes and feelings, and tries a child who is not his.
    wishes_for_child(ben.store, worker, alfie)
    with pytest.raises(NotAllowed):
        wishes_for_child(ben.store, worker, caseload.children["Daisy"])
    written = node_events(ben.store)
    assert [(e.action, e.kind, e.record_id) for e in written[-2:]] == [
        ("read", "wishes_and_feelings", alfie), ("denied", "child", caseload.children["Daisy"])]

    first, second = ben.sync_once(), ben.sync_once()

    assert first.phase == second.phase == Phase.idle, first.message
    assert first.audit_sent == len(written) and second.audit_sent == 0
    held = events_from(server, device)
    assert [e.origin for e in held] == [f"{device}:{e.id}" for e in written]  # once each, in the node's order
    assert {e.device_id for e in held} == {device}
    for mine, theirs in zip(written, held, strict=True):
        assert (theirs.at, theirs.worker_id, theirs.action, theirs.kind, theirs.record_id, theirs.child_id,
                theirs.detail) == (mine.at, mine.worker_id, mine.action, mine.kind, mine.record_id, mine.child_id,
                                   mine.detail)

    # An upload sent again (its answer lost) is held once; a device id in the body is not believed.
    enrolment = sync_node.load_enrolment(ben.store)
    again = audit_upload(enrolment, [e.model_dump() for e in written[-2:]], extra={"device_id": "someone-else"})
    assert again.status_code == 200, again.text
    assert again.json() == {"recorded": [], "duplicates": [e.id for e in written[-2:]]}
    wishes_for_child(ben.store, worker, alfie)
    [later] = node_events(ben.store)[-1:]
    assert audit_upload(enrolment, [later.model_dump()], extra={"device_id": "someone-else"}).status_code == 200
    assert events_from(server, device)[-1].device_id == device
    assert len(events_from(server, device)) == len(written) + 1
    assert ben.sync_once().audit_sent == 0  # the server held it already: the node's cursor moves on

    with server.session() as session:
        assert audit.verify(session).ok
    with ben.store.session() as session:
        assert audit.verify(session).ok  # the node's own chain is as it was written


def test_an_audit_event_for_another_worker_is_refused_and_the_rest_still_arrive(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = enrol(server, node(tmp_path, "ben"), "ben", caseload, urls=[server_url])
    assert ben.sync_once().phase == Phase.idle
    enrolment = sync_node.load_enrolment(ben.store)
    caleb = caseload.children["Caleb"]  # chloe's child
    with ben.store.session() as session:
        forged = audit.append(session, "read", "child", caleb, worker_id=caseload.workers["chloe"], child_id=caleb)
        honest = audit.append(session, "read", "child", caseload.children["Alfie"], worker_id=caseload.workers["ben"])
    forged_event, honest_event = forged.model_dump(), honest.model_dump()

    refused = audit_upload(enrolment, [honest_event, forged_event])
    assert refused.status_code == 403
    assert "another worker" in refused.json()["message"] and "None of the upload was recorded" in refused.json()[
        "message"]
    assert refused.json()["change_ids"] == [forged.id]
    assert events_from(server, enrolment.device_id) == []
    wire = [messages.AuditEventUpload.model_validate(honest_event).model_dump(mode="json")]
    batch_id = str(uuid.uuid4())
    altered = httpx.post(f"{server_url}/api/sync/audit", timeout=120, headers={
        "Authorization": f"Bearer {enrolment.token}"}, json={
        "batch_id": batch_id, "events": [{**wire[0], "action": "update"}],
        "signature": messages.audit_signature(messages.token_key(enrolment.token), batch_id, wire)})
    assert altered.status_code == 400 and altered.json()["code"] == "tampered"

    report = ben.sync_once()

    assert report.phase == Phase.idle and report.audit_refused == 1, report.message
    assert sync_node.sync_status(ben.store).audit_refused == 1  # kept on the node, and shown
    origins = {e.origin for e in events_from(server, enrolment.device_id)}
    assert f"{enrolment.device_id}:{honest.id}" in origins and f"{enrolment.device_id}:{forged.id}" not in origins
    assert all(e.worker_id in (None, caseload.workers["ben"]) for e in events_from(server, enrolment.device_id))
    again = ben.sync_once()
    assert again.audit_sent == again.audit_refused == 0
    with server.session() as session:
        assert audit.verify(session).ok
        denied = session.exec(select(AuditEvent).where(AuditEvent.action == "denied", AuditEvent.kind == "audit",
                                                       AuditEvent.device_id == enrolment.device_id)).all()
        # The forged event's refusals, and the altered upload's (audited as tampering).
        assert denied and all(forged.id in e.detail or e.detail == "bad signature" for e in denied)
        assert [e.detail for e in denied].count("bad signature") == 1
    with ben.store.session() as session:
        assert audit.verify(session).ok

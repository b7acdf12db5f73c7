"""Child mode with no signal, on the server: what the phone keeps to check the worker's PIN, the offline page's
words from the same .po files, the statement and "I don't feel safe" coming home as drafts (stored once, the
flag's push queued once), and a phone in child mode kept from every other API, per session."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
from nicegui.testing.user import User
from PIL import Image
from sqlmodel import func, select

from pwa.child_offline import offline_child_json
from pwa.child_texts import catalogue
from pwa.pwa_shell import offline_html
from storage import push_delivery
from storage.child_forms import FormInvalid
from storage.child_voice import offline_pin_check, statements_for_child
from storage.models import AuditEvent, Child, ChildStatement, Photo, SafeguardingFlag, Worker
from storage.offline import receive_draft
from storage.store import Store
from tests.conftest import sign_in
from tests.push_service import Device, PushService
from tests.test_child_mode_pages import hand_over
from tests.test_child_voice import child_of, worker_named
from tests.test_push import small_caseload


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def small_store(store: Store) -> Store:
    return small_caseload(store)


def test_the_phone_keeps_a_salted_pbkdf2_check_of_the_pin_never_the_pin() -> None:
    check = offline_pin_check("2468")
    assert check is not None and "2468" not in repr(check)
    again = hashlib.pbkdf2_hmac("sha256", b"2468", base64.b64decode(check["salt"]), check["iterations"])
    assert base64.b64encode(again).decode() == check["check"]
    assert offline_pin_check("2468")["salt"] != check["salt"]  # type: ignore[index]
    assert offline_pin_check("") is None  # no PIN: with no signal, nobody takes the phone back


def test_the_offline_page_carries_the_welsh_from_the_po_file() -> None:
    welsh = catalogue("cy")
    assert welsh["I don't feel safe"] == "Dydw i ddim yn teimlo'n ddiogel"
    assert welsh["No signal. What you say is kept safe on this phone and sent when the signal comes back."].startswith(
        "Dim signal.")
    assert catalogue("en") == {} and catalogue("fr") == {}
    shipped = json.loads(offline_child_json())
    assert "</" not in offline_child_json() and shipped["texts"]["cy"] == welsh
    # The steps are the screen's own, in English: every word of them has its Welsh in the .po file.
    steps = shipped["steps"]
    english = [w for _, w in steps["faces"]] + [q for _, q in steps["questions"]] + [q for _, _, q in steps["houses"]]
    assert len(english) == 11 and all(w in welsh for w in english + [q for _, q in steps["tell"]])
    assert "Dydw i ddim yn teimlo'n ddiogel" in offline_html()


def test_a_statement_made_offline_comes_home_once_with_a_drawing_per_house(small_store: Store) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)
    fields = {"feeling_home": "4", "worries": "Shouting", "tell_judge": "Let me stay", "language": "cy",
              "unsafe": "", "drawing_houses": ["hopes", "good_things"]}
    first = receive_draft(small_store, ben, "child_statement", child.id, fields, "key-offline-statement-1",
                          photos=[png(), png()])
    again = receive_draft(small_store, ben, "child_statement", child.id, fields, "key-offline-statement-1",
                          photos=[png(), png()])
    assert first.record_id == again.record_id
    [view] = statements_for_child(small_store, ben, child.id)
    assert view.feelings == {"home": 4} and view.words == {"worries": "Shouting", "tell_judge": "Let me stay"}
    assert set(view.drawings) == {"hopes", "good_things"} and view.language == "cy"
    with small_store.session() as session:
        assert session.exec(select(func.count()).select_from(Photo).where(Photo.child_id == child.id)).one() == 2


@pytest.mark.parametrize("houses", [["hopes"], ["hopes", "hopes"], ["attic", "hopes"]])
def test_drawings_that_do_not_match_their_houses_store_nothing(small_store: Store, houses: list[str]) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)
    with pytest.raises(FormInvalid):
        receive_draft(small_store, ben, "child_statement", child.id, {"drawing_houses": houses}, "key-offline-bad-1",
                      photos=[png(), png()])
    with small_store.session() as session:
        assert session.exec(select(func.count()).select_from(ChildStatement)).one() == 0
        assert session.exec(select(func.count()).select_from(Photo)).one() == 0


def test_i_dont_feel_safe_said_offline_raises_one_flag_and_queues_its_push_once(small_store: Store) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)
    service = PushService()
    try:
        push_delivery.subscribe(small_store, ben.id, Device(service, "ben").subscription())
        first = receive_draft(small_store, ben, "safeguarding_flag", child.id, {}, "key-offline-unsafe-1")
        again = receive_draft(small_store, ben, "safeguarding_flag", child.id, {}, "key-offline-unsafe-1")
    finally:
        service.close()
    assert first.deliveries and again.deliveries == () and first.record_id == again.record_id
    with small_store.session() as session:
        assert session.exec(select(func.count()).select_from(SafeguardingFlag)).one() == 1


async def test_a_phone_in_child_mode_reaches_only_the_childs_own_routes(user: User, app_store: Store) -> None:
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        child_id, other_id = list(session.exec(select(Child.id).where(Child.worker_id == ben.id).order_by(Child.id)))[:2]
    await sign_in(user, "ben")
    await hand_over(user, child_id, pin="2468")
    client = user.http_client
    for path in ("/api/offline/caseload", "/api/push/key", "/openapi.json", "/docs"):
        kept = await client.get(path)
        assert kept.status_code == 423 and "child mode" in kept.json()["message"], path
    assert (await client.post("/api/offline/held", json={"keys": ["x" * 10]})).status_code == 423
    visit = {"idempotency_key": "key-child-mode-visit", "kind": "visit", "child_id": child_id, "fields": {}}
    assert (await client.post("/api/offline/drafts", json=visit)).status_code == 423  # waits on the phone
    flag = {"idempotency_key": "key-child-mode-flag", "kind": "safeguarding_flag", "fields": {}}
    assert (await client.post("/api/offline/drafts", json=flag | {"child_id": other_id})).status_code == 423
    assert (await client.post("/api/offline/drafts", json=flag | {"child_id": child_id})).status_code == 200

    wrong = await client.post("/api/child-mode/leave", json={"secret": "1357"})
    assert wrong.status_code == 403 and "not your worker's PIN" in wrong.json()["message"]
    assert (await client.get("/api/offline/caseload")).status_code == 423
    right = await client.post("/api/child-mode/leave", json={"secret": "2468"})
    assert right.status_code == 200 and right.json()["child_id"] == child_id
    assert (await client.get("/api/offline/caseload")).status_code == 200  # the worker's again
    with app_store.session() as session:
        tries = [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.kind == "child_mode"))]
    assert tries.count("leave") == 1
    # Each call kept back, audited: 4 reads, the held drafts, the visit, the other child, the caseload again; and
    # the wrong PIN.
    assert tries.count("denied") == 4 + 1 + 1 + 1 + 1 + 1

"""The phone's drafts API with photos (/api/offline/drafts), as a signed-in phone calls it (NiceGUI's User).

A life-story draft brings its photos as base64 in the JSON body; the answer says what to fix when a photo
cannot be taken (the phone keeps the draft and shows it), and a body too big is refused before it is read.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

from nicegui.testing.user import User
from PIL import Image
from sqlmodel import func, select

from pwa.pwa_shell import DRAFT_BODY_MAX_BYTES
from storage.models import Child, LifeStoryEntry, Photo, Worker
from storage.store import Store
from storage.timescales.calendar import today_in_england
from tests.conftest import sign_in


def bens_child(store: Store) -> str:
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        return session.exec(select(Child).where(Child.worker_id == ben.id).order_by(Child.id)).first().id


def jpeg_base64(size: tuple[int, int] = (640, 480)) -> str:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 40, 160)).save(out, "JPEG")
    return base64.b64encode(out.getvalue()).decode()


def life_story_draft(child_id: str, key: str, photos: list[str]) -> dict:
    return {"idempotency_key": key, "kind": "life_story", "child_id": child_id,
            "fields": {"on": today_in_england().isoformat(), "section": "family", "title": f"Draft {key}", "text": ""},
            "photos": [{"id": f"photo-{n}", "data": data} for n, data in enumerate(photos)]}


def held(store: Store, child_id: str) -> tuple[int, int]:
    """The child's life-story entries and photos, counted."""
    with store.session() as session:
        return (session.exec(select(func.count()).select_from(LifeStoryEntry)
                             .where(LifeStoryEntry.child_id == child_id)).one(),
                session.exec(select(func.count()).select_from(Photo).where(Photo.child_id == child_id)).one())


async def signed_in(user: User) -> None:
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)


async def test_a_draft_with_its_photo_is_stored_once_however_often_it_is_sent(user: User, app_store: Store) -> None:
    await signed_in(user)
    child_id = bens_child(app_store)
    before = held(app_store, child_id)
    draft = life_story_draft(child_id, "key-api-photo-01", [jpeg_base64()])
    first = await user.http_client.post("/api/offline/drafts", json=draft)
    again = await user.http_client.post("/api/offline/drafts", json=draft)
    assert first.status_code == again.status_code == 200
    assert first.json()["record_id"] == again.json()["record_id"]
    assert held(app_store, child_id) == (before[0] + 1, before[1] + 1)


async def test_a_photo_seen_cannot_take_is_refused_with_what_to_do(user: User, app_store: Store) -> None:
    await signed_in(user)
    child_id = bens_child(app_store)
    before = held(app_store, child_id)

    not_a_photo = base64.b64encode(b"a note, not a photo").decode()
    answer = await user.http_client.post("/api/offline/drafts",
                                         json=life_story_draft(child_id, "key-api-photo-02", [jpeg_base64(), not_a_photo]))
    assert answer.status_code == 422  # the phone marks the draft as needing changes, and keeps it
    assert "Photo 2 is not a photo Seen can read" in answer.json()["problems"]["photo"]

    garbled = await user.http_client.post("/api/offline/drafts",
                                          json=life_story_draft(child_id, "key-api-photo-03", ["@@not base64@@"]))
    assert garbled.status_code == 400  # the request was damaged, not the photo: the phone sends it again
    assert "did not arrive whole" in garbled.json()["message"]

    visit = {"idempotency_key": "key-api-photo-04", "kind": "visit", "child_id": child_id,
             "fields": {"visit_date": today_in_england().isoformat()}, "photos": [{"data": jpeg_base64()}]}
    answer = await user.http_client.post("/api/offline/drafts", json=visit)
    assert answer.status_code == 422 and "can bring photos" in answer.json()["message"]
    assert held(app_store, child_id) == before


async def test_a_draft_too_big_to_send_is_refused_before_it_is_read(user: User, app_store: Store) -> None:
    await signed_in(user)
    child_id = bens_child(app_store)
    before = held(app_store, child_id)
    chunk = b"A" * (1024 * 1024)

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b'{"idempotency_key": "key-api-photo-05", "kind": "life_story", "photos": [{"data": "'
        for _ in range(DRAFT_BODY_MAX_BYTES // len(chunk) + 1):
            yield chunk
        yield b'"}]}'

    for body in (streamed(), b"A" * (DRAFT_BODY_MAX_BYTES + 1)):
        answer = await user.http_client.post("/api/offline/drafts", content=body,
                                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 413
        assert "too big to send" in answer.json()["message"] and "remove a photo" in answer.json()["message"]
    assert held(app_store, child_id) == before

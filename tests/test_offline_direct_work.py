"""Wishes-and-feelings and life-story drafts written offline come home once per key, checked like the screens.

The phone may send the same draft again after a dropped connection: each key stores one record with every
word the worker typed, and a life-story entry each photo taken for it, once. A draft the screen would
refuse is refused here too, with nothing stored, and the reason in the words the screen uses
(storage/offline.py turns it into the 422 the phone shows).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlmodel import func, select

from storage.child_forms import FormInvalid
from storage.models import Child, Draft, LifeStoryEntry, Photo, WishesAndFeelings, Worker
from storage.offline import receive_draft
from storage.photos import DRAFT_PHOTO_MAX_BYTES, PHOTOS_PER_ENTRY, open_photo
from storage.store import Store
from tests.conftest import DEMO_DAY

WORDS = "I want to see my brother Kai every Saturday, and I want my own room with a blue lamp."
STORY = "You started at Hillside Primary. You wore the green jumper and told everyone about your rabbit."


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def a_child(store: Store, who: Worker) -> Child:
    with store.session() as session:
        return session.exec(select(Child).where(Child.worker_id == who.id)).first()


def wishes_form(**changes: Any) -> dict[str, Any]:
    return {"on": DEMO_DAY.isoformat(), "method": "three_houses", "child_words": WORDS,
            "reflection": "Kai matters most to her.", "shared_with": "Carer"} | changes


def life_story_form(**changes: Any) -> dict[str, Any]:
    return {"on": DEMO_DAY.isoformat(), "section": "achievements", "title": "My first day at school",
            "text": STORY} | changes


def receipt(store: Store, key: str) -> Draft | None:
    with store.session() as session:
        return session.exec(select(Draft).where(Draft.idempotency_key == key)).first()


def test_a_wishes_draft_sent_twice_is_stored_once_with_every_word(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    first = receive_draft(module_demo_store, ben, "wishes_and_feelings", child.id, wishes_form(), "key-wishes-0001")
    again = receive_draft(module_demo_store, ben, "wishes_and_feelings", child.id, wishes_form(), "key-wishes-0001")
    assert first.record_id == again.record_id
    with module_demo_store.session() as session:
        rows = [module_demo_store.opened(r) for r in session.exec(
            select(WishesAndFeelings).where(WishesAndFeelings.child_id == child.id))]
    stored = [r for r in rows if r.child_words == WORDS]
    assert len(stored) == 1
    record = stored[0]
    assert record.id == first.record_id and record.worker_id == ben.id
    assert (record.on, record.method, record.status) == (DEMO_DAY, "three_houses", "submitted")
    assert (record.reflection, record.shared_with) == ("Kai matters most to her.", "Carer")


def test_a_life_story_draft_sent_twice_is_stored_once_with_every_word(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    first = receive_draft(module_demo_store, ben, "life_story", child.id, life_story_form(), "key-story-0001")
    again = receive_draft(module_demo_store, ben, "life_story", child.id, life_story_form(), "key-story-0001")
    assert first.record_id == again.record_id
    with module_demo_store.session() as session:
        rows = [module_demo_store.opened(r) for r in session.exec(
            select(LifeStoryEntry).where(LifeStoryEntry.child_id == child.id))]
        photos = session.exec(select(Photo).where(Photo.record_id == first.record_id)).all()
    stored = [r for r in rows if r.text == STORY]
    assert len(stored) == 1
    entry = stored[0]
    assert entry.id == first.record_id and entry.worker_id == ben.id
    assert (entry.on, entry.section, entry.title) == (DEMO_DAY, "achievements", "My first day at school")
    assert photos == []  # none were taken for it


@pytest.mark.parametrize(("kind", "form", "field"), [
    ("wishes_and_feelings", wishes_form(child_words="   "), "child_words"),
    ("life_story", life_story_form(text=""), "text"),  # no photo stands for the words either
    ("life_story", life_story_form(section="my_pets"), "section"),
])
def test_a_draft_that_needs_fixing_is_refused_and_stores_nothing(module_demo_store: Store, kind: str,
                                                                 form: dict[str, Any], field: str) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    key = f"key-bad-{kind}-{field}"
    model = WishesAndFeelings if kind == "wishes_and_feelings" else LifeStoryEntry
    with module_demo_store.session() as session:
        before = len(session.exec(select(model.id).where(model.child_id == child.id)).all())
    with pytest.raises(FormInvalid) as refused:
        receive_draft(module_demo_store, ben, kind, child.id, form, key)
    assert field in refused.value.problems and refused.value.problems[field]
    with module_demo_store.session() as session:
        after = len(session.exec(select(model.id).where(model.child_id == child.id)).all())
    assert after == before
    assert receipt(module_demo_store, key) is None


# ------------------------------------------------------------ photos taken with no signal

EXIF_MARKER = "SEEN-EXIF-MARKER-Hillside-Road"


def camera_jpeg(size: tuple[int, int] = (2400, 1800), colour: tuple[int, int, int] = (200, 90, 40), *,
                turned: bool = False) -> bytes:
    """A JPEG as a phone's camera makes it: EXIF with a description (where carers' addresses hide) and,
    when `turned`, the orientation tag saying the picture must be turned a quarter to stand upright."""
    image = Image.new("RGB", size, colour)
    image.paste((250, 220, 30), (0, 0, size[0] // 4, size[1] // 4))  # a corner, so it is not one flat colour
    exif = Image.Exif()
    exif[0x010E] = EXIF_MARKER  # ImageDescription
    if turned:
        exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, exif=exif.tobytes())
    return out.getvalue()


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (20, 120, 60, 255)).save(out, "PNG")
    return out.getvalue()


def counts(store: Store, child: Child) -> tuple[int, int]:
    """How many life-story entries and photos the child has."""
    with store.session() as session:
        entries = session.exec(select(func.count()).select_from(LifeStoryEntry)
                               .where(LifeStoryEntry.child_id == child.id)).one()
        photos = session.exec(select(func.count()).select_from(Photo).where(Photo.child_id == child.id)).one()
    return entries, photos


def test_a_life_story_draft_sent_twice_with_its_photos_stores_each_photo_once(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    form = life_story_form(title="The day we got Biscuit", text="")  # the photos tell this one
    photos = [camera_jpeg(turned=True), small_png()]
    first = receive_draft(module_demo_store, ben, "life_story", child.id, form, "key-photos-0001", photos=photos)
    # The answer never reached the phone (the signal went): it sends the same draft again.
    again = receive_draft(module_demo_store, ben, "life_story", child.id, form, "key-photos-0001", photos=photos)
    assert again.record_id == first.record_id

    with module_demo_store.session() as session:
        entries = [module_demo_store.opened(e) for e in session.exec(
            select(LifeStoryEntry).where(LifeStoryEntry.child_id == child.id))]
        stored = list(session.exec(select(Photo).where(Photo.record_id == first.record_id)
                                   .order_by(Photo.created_at, Photo.id)))
        images = [open_photo(module_demo_store, p) for p in stored]
    assert [e.id for e in entries if e.title == "The day we got Biscuit"] == [first.record_id]
    assert len(stored) == 2
    assert all(p.child_id == child.id and p.mime == "image/jpeg" for p in stored)
    sizes = set()
    for image in images:
        assert EXIF_MARKER.encode() not in image  # the camera's metadata is gone
        with Image.open(io.BytesIO(image)) as opened:
            assert opened.format == "JPEG"
            sizes.add(opened.size)
    # Turned upright and made no bigger than the book needs; the small one kept its size.
    assert sizes == {(1200, 1600), (300, 200)}


@pytest.mark.parametrize(("photos", "says"), [
    ([camera_jpeg(), b"these are not the bytes of a photo"], "Photo 2 is not a photo Seen can read"),
    ([camera_jpeg((400, 300))] * (PHOTOS_PER_ENTRY + 1), f"up to {PHOTOS_PER_ENTRY} photos"),
    ([b"\xff\xd8\xff" + b"\0" * DRAFT_PHOTO_MAX_BYTES], "The photo is too big to send"),
], ids=["not-a-photo", "too-many", "too-big"])
def test_a_draft_with_a_photo_seen_cannot_take_stores_nothing(module_demo_store: Store, photos: list[bytes],
                                                              says: str, request: pytest.FixtureRequest) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    key = f"key-bad-photo-{request.node.callspec.id}"
    before = counts(module_demo_store, child)
    with pytest.raises(FormInvalid) as refused:
        receive_draft(module_demo_store, ben, "life_story", child.id, life_story_form(), key, photos=photos)
    assert says in refused.value.problems["photo"]
    assert counts(module_demo_store, child) == before  # neither the entry nor any of its photos
    assert receipt(module_demo_store, key) is None  # so the phone can send it again once it is fixed


def test_photos_come_only_with_a_life_story_entry_or_a_childs_statement(module_demo_store: Store) -> None:
    ben = worker(module_demo_store, "ben")
    child = a_child(module_demo_store, ben)
    with pytest.raises(ValueError, match="can bring photos"):
        receive_draft(module_demo_store, ben, "wishes_and_feelings", child.id, wishes_form(), "key-wishes-photo",
                      photos=[camera_jpeg()])
    assert receipt(module_demo_store, "key-wishes-photo") is None


def test_a_correction_finished_offline_replaces_its_record_once_as_on_the_screen(module_demo_store: Store) -> None:
    """A worker began correcting on the screen, lost the signal and finished on the phone: the draft brings
    which record it replaces (and, for a life-story entry, which of its photos stay), so it arrives as the
    correction, not as a second record beside the first."""
    store = module_demo_store
    ben = worker(store, "ben")
    child = a_child(store, ben)
    wrong = receive_draft(store, ben, "wishes_and_feelings", child.id, wishes_form(child_words="I like my rom"),
                          "key-wishes-typo")
    fixed = receive_draft(store, ben, "wishes_and_feelings", child.id,
                          wishes_form(child_words="I like my room", supersedes=wrong.record_id), "key-wishes-fix")
    again = receive_draft(store, ben, "wishes_and_feelings", child.id,
                          wishes_form(child_words="I like my room", supersedes=wrong.record_id), "key-wishes-fix")
    assert again.record_id == fixed.record_id
    with store.session() as session:
        record = session.get(WishesAndFeelings, fixed.record_id)
        assert record is not None and record.supersedes == wrong.record_id
    # A second correction of the same record is refused, as on the screen: correct the newer one.
    with pytest.raises(FormInvalid) as refused:
        receive_draft(store, ben, "wishes_and_feelings", child.id,
                      wishes_form(child_words="I love my room", supersedes=wrong.record_id), "key-wishes-fix-2")
    assert "already been corrected" in refused.value.problems["supersedes"]

    photos = [camera_jpeg((800, 600)), small_png()]
    first = receive_draft(store, ben, "life_story", child.id, life_story_form(title="Sports dya"), "key-story-typo",
                          photos=photos)
    with store.session() as session:
        held = list(session.exec(select(Photo).where(Photo.record_id == first.record_id)
                                 .order_by(Photo.created_at, Photo.id)))
    keep = held[1].id  # the worker kept the second photo, dropped the first, and added a new one offline
    form = life_story_form(title="Sports day", corrects=first.record_id, keep=keep)
    corrected = receive_draft(store, ben, "life_story", child.id, form, "key-story-fix", photos=[small_png()])
    assert receive_draft(store, ben, "life_story", child.id, form, "key-story-fix",
                         photos=[small_png()]).record_id == corrected.record_id
    with store.session() as session:
        entry = session.get(LifeStoryEntry, corrected.record_id)
        assert entry is not None and entry.supersedes == first.record_id
        assert store.opened(entry).title == "Sports day"
        carried = session.exec(select(func.count()).select_from(Photo).where(Photo.record_id == entry.id)).one()
        assert carried == 2  # the kept photo and the new one
    # Keeping a photo that is not the old entry's is refused, storing nothing.
    with pytest.raises(FormInvalid) as refused:
        receive_draft(store, ben, "life_story", child.id,
                      life_story_form(title="Sports day", corrects=corrected.record_id, keep="not-a-photo-of-it"),
                      "key-story-fix-2")
    assert "photo" in refused.value.problems

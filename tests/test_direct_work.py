"""Direct-work storage on SQLite and PostgreSQL: corrections of immutable records, photos sealed at rest."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import text
from sqlmodel import select

from storage.child_forms import FormInvalid
from storage.life_story import (
    add_life_story_entry,
    correct_life_story_entry,
    life_story_book,
    life_story_for_child,
)
from storage.models import AuditEvent, Child, ChildBody, LifeStoryEntry, Photo, Team, Worker
from storage.photos import photo_for_worker, prepare_photo
from storage.store import NotAllowed, Store
from storage.wishes import submit_wishes, wishes_correction_form, wishes_for_child
from tests.conftest import DEMO_DAY


@pytest.fixture
def small(store: Store) -> Store:
    """Two teams, a worker in each and a child of Ben's: all these tests need (the demo is slow on PostgreSQL)."""
    with store.session() as session:
        cic, cin = Team(name="CiC"), Team(name="CiN")
        session.add_all([cic, cin])
        session.flush()
        ben = Worker(username="ben", display_name="Ben Castle", team_id=cic.id)
        session.add_all([ben, Worker(username="erin", display_name="Erin Frost", team_id=cin.id),
                         Worker(username="amara", display_name="Amara Okafor", role="manager", team_id=cic.id)])
        session.flush()
        child = Child(category="cic", team_id=cic.id, worker_id=ben.id)
        store.write(session, child, ChildBody(first_name="Alfie", last_name="Applewick"), action="create")
    return store


def worker(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def first_child(store: Store, owner: Worker) -> str:
    with store.session() as session:
        return session.exec(select(Child.id).where(Child.worker_id == owner.id).order_by(Child.id)).first()


def form(**changes: str) -> dict[str, str]:
    return {"on": DEMO_DAY.isoformat(), "method": "three_houses", "child_words": "My house of dreams has a pool",
            "reflection": "Hopeful", "shared_with": "", "supersedes": "", **changes}


def test_a_correction_supersedes_once_and_only_by_its_author(small: Store) -> None:
    ben, amara = worker(small, "ben"), worker(small, "amara")
    child_id = first_child(small, ben)
    original = submit_wishes(small, ben, child_id, form(), today=DEMO_DAY)
    fix = wishes_correction_form(small, ben, child_id, original.id)
    assert fix["supersedes"] == original.id and fix["child_words"] == "My house of dreams has a pool"
    with pytest.raises(FormInvalid, match="Only the worker who wrote"):  # even their manager
        submit_wishes(small, amara, child_id, {**fix, "child_words": "Changed"}, today=DEMO_DAY)
    corrected = submit_wishes(small, ben, child_id, {**fix, "child_words": "My dream house has a pool"},
                              today=DEMO_DAY)
    with pytest.raises(FormInvalid, match="already been corrected"):
        submit_wishes(small, ben, child_id, fix, today=DEMO_DAY)
    _, entries = wishes_for_child(small, ben, child_id)
    by_id = {e.id: e for e in entries}
    assert by_id[original.id].superseded_by == corrected.id and not by_id[original.id].correctable
    assert by_id[corrected.id].supersedes == original.id and by_id[corrected.id].correctable
    # The original's words are kept as they were: a correction never rewrites the record.
    assert by_id[original.id].child_words == "My house of dreams has a pool"


def test_future_dated_work_is_refused_and_nothing_is_stored(small: Store) -> None:
    ben = worker(small, "ben")
    child_id = first_child(small, ben)
    _, before = wishes_for_child(small, ben, child_id)
    with pytest.raises(FormInvalid, match="in the future"):
        submit_wishes(small, ben, child_id, form(on=(DEMO_DAY + timedelta(days=1)).isoformat()), today=DEMO_DAY)
    _, after = wishes_for_child(small, ben, child_id)
    assert len(after) == len(before)


def test_photos_are_sealed_in_the_database_and_open_only_for_those_who_may_see_the_child(small: Store) -> None:
    ben, erin = worker(small, "ben"), worker(small, "erin")
    child_id = first_child(small, ben)
    picture = Image.new("RGB", (2000, 1000), (200, 30, 60))
    raw = io.BytesIO()
    picture.save(raw, "PNG")
    image = prepare_photo(raw.getvalue())
    entry = add_life_story_entry(small, ben, child_id, {"on": DEMO_DAY.isoformat(), "section": "lived",
                                                             "title": "Our street", "text": ""}, [image],
                                 today=DEMO_DAY)
    with small.session() as session:
        photo = session.exec(select(Photo).where(Photo.record_id == entry.id)).one()
        stored = session.execute(text("SELECT sealed FROM photo WHERE id = :id"), {"id": photo.id}).scalar_one()
    assert bytes(stored) != image and image[100:164] not in bytes(stored)
    assert photo_for_worker(small, ben, photo.id) == (image, "image/jpeg")
    with pytest.raises(NotAllowed):
        photo_for_worker(small, erin, photo.id)
    with pytest.raises(NotAllowed):
        photo_for_worker(small, ben, "no-such-photo")
    with small.session() as session:
        denied = {(e.kind, e.record_id) for e in session.exec(select(AuditEvent).where(
            AuditEvent.action == "denied"))}
    assert ("child", child_id) in denied and ("photo", "no-such-photo") in denied
    _, sections = life_story_for_child(small, ben, child_id)
    lived = next(s for s in sections if s.code == "lived")
    assert [e.photo_ids for e in lived.entries if e.id == entry.id] == [[photo.id]]


def test_a_life_story_entry_is_corrected_by_its_author_keeping_only_the_photos_chosen(small: Store) -> None:
    ben, amara = worker(small, "ben"), worker(small, "amara")
    child_id = first_child(small, ben)
    right, wrong = (prepare_photo(_png((40, 160, 60))), prepare_photo(_png((160, 40, 60))))
    entry = add_life_story_entry(small, ben, child_id, {"on": DEMO_DAY.isoformat(), "section": "born",
                                                         "title": "The day you were bron", "text": "In Leeds"},
                                 [right, wrong], today=DEMO_DAY)
    with small.session() as session:
        right_id, wrong_id = [p.id for p in session.exec(select(Photo).where(Photo.record_id == entry.id)
                                                            .order_by(Photo.created_at, Photo.id))]
    if photo_for_worker(small, ben, right_id)[0] != right:
        right_id, wrong_id = wrong_id, right_id
    fixed = {"on": DEMO_DAY.isoformat(), "section": "born", "title": "The day you were born", "text": "In Leeds"}
    with pytest.raises(FormInvalid, match="Only the worker who added"):  # not even their manager
        correct_life_story_entry(small, amara, child_id, entry.id, fixed, [right_id], today=DEMO_DAY)
    with pytest.raises(FormInvalid, match="not one of this entry's photos"):
        correct_life_story_entry(small, ben, child_id, entry.id, fixed, ["another"], today=DEMO_DAY)
    corrected = correct_life_story_entry(small, ben, child_id, entry.id, fixed, [right_id], today=DEMO_DAY)
    with pytest.raises(FormInvalid, match="already been corrected"):
        correct_life_story_entry(small, ben, child_id, entry.id, fixed, [], today=DEMO_DAY)

    _, sections = life_story_for_child(small, ben, child_id)
    born = next(s for s in sections if s.code == "born")
    assert [(e.id, e.title, e.corrects) for e in born.entries] == [(corrected.id, "The day you were born", True)]
    (kept,) = born.entries[0].photo_ids
    assert photo_for_worker(small, ben, kept)[0] == right  # the wrong photo is not in the child's book
    book = life_story_book(small, ben, child_id)
    titles = [e.title for s in book.sections for e in s.entries]
    assert "The day you were born" in titles and "The day you were bron" not in titles
    # The original stays as it was written, for the record.
    with small.session() as session:
        assert small.opened(session.get(LifeStoryEntry, entry.id)).body.title == "The day you were bron"


def _png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), colour).save(out, "PNG")
    return out.getvalue()

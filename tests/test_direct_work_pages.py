"""Wishes and feelings, life story and care plan screens, as a worker meets them (NiceGUI's User)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from nicegui import Client, core, ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing.user import User
from PIL import Image, ImageDraw, PngImagePlugin
from pypdf import PdfReader
from sqlmodel import select

from storage.care_plans import add_action, care_plans_for_child
from storage.life_story import (
    LIFE_STORY_DRAFT_KIND,
    LifeStoryBook,
    LifeStorySection,
    add_life_story_entry,
    life_story_for_child,
)
from storage.life_story_book import life_story_pdf
from storage.models import (
    AuditEvent,
    CarePlan,
    CarePlanAction,
    Child,
    Draft,
    LifeStoryEntry,
    Photo,
    WishesAndFeelings,
    Worker,
)
from storage.photos import open_photo, prepare_photo
from storage.store import NotAllowed, Store
from storage.timescales.calendar import today_in_england
from storage.wishes import wishes_for_child
from tests.conftest import sign_in


def child_of(store: Store, username: str) -> tuple[str, str]:
    """One child on the worker's caseload: (id, first name)."""
    with store.session() as session:
        worker = session.exec(select(Worker).where(Worker.username == username)).one()
        child = session.exec(select(Child).where(Child.worker_id == worker.id, Child.category == "cic")
                             .order_by(Child.id)).first()
        return child.id, store.opened(child).body.first_name


def value_of(user: User, marker: str) -> object:
    return next(iter(user.find(marker=marker).elements)).value


def set_value(user: User, marker: str, value: object) -> None:
    for element in user.find(marker=marker).elements:
        element.value = value


def wishes_count(store: Store, child_id: str) -> int:
    with store.session() as session:
        return len(session.exec(select(WishesAndFeelings).where(WishesAndFeelings.child_id == child_id)).all())


# ------------------------------------------------------------ wishes and feelings


async def test_wishes_are_saved_sealed_and_listed_with_the_childs_words(user: User, app_store: Store) -> None:
    child_id, first = child_of(app_store, "ben")
    before = wishes_count(app_store, child_id)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}/wishes")
    await user.should_see("Earlier work", retries=50)
    user.find(marker="child_words").type("I want a dog called Pickle")
    user.find(marker="reflection").type("Animals matter a lot to them right now.")
    user.find(marker="method").click()
    set_value(user, "method", "drawing")
    user.find(marker="shared_with").type("Carer")
    user.find(marker="submit").click()
    await user.should_see("Wishes and feelings saved", retries=50)
    await user.should_see(f"In {first}'s words")
    await user.should_see("I want a dog called Pickle")
    assert wishes_count(app_store, child_id) == before + 1
    with app_store.session() as session:
        newest = session.exec(select(WishesAndFeelings).where(WishesAndFeelings.child_id == child_id)
                              .order_by(WishesAndFeelings.created_at.desc())).first()
        assert newest.status == "submitted" and newest.method == "drawing"
        assert b"Pickle" not in newest.sealed
        body = app_store.opened(newest).body
        assert body.child_words == "I want a dog called Pickle" and body.shared_with == "Carer"
        assert session.exec(select(Draft).where(Draft.child_id == child_id)).first() is None
    assert value_of(user, "child_words") == ""


async def test_an_empty_wishes_form_is_refused_with_a_clear_message(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    before = wishes_count(app_store, child_id)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}/wishes")
    await user.should_see("Earlier work", retries=50)
    user.find(marker="submit").click()
    await user.should_see("Write the child's words, as they said them", retries=50)
    assert wishes_count(app_store, child_id) == before


async def test_wishes_dated_in_the_future_are_refused(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    before = wishes_count(app_store, child_id)
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}/wishes")
    await user.should_see("Earlier work", retries=50)
    set_value(user, "on", (today_in_england() + timedelta(days=3)).isoformat())
    user.find(marker="child_words").type("Fine")
    user.find(marker="submit").click()
    await user.should_see("The date is in the future", retries=50)
    assert wishes_count(app_store, child_id) == before


async def test_a_wishes_draft_survives_a_reload(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}/wishes")
    await user.should_see("Earlier work", retries=50)
    user.find(marker="child_words").type("Half a sentence about my nan")
    user.find(marker="reflection").type("Quiet today")
    await user.should_see("Draft saved", retries=50)
    with app_store.session() as session:
        draft = session.exec(select(Draft).where(Draft.child_id == child_id,
                                                 Draft.kind == "wishes_and_feelings")).one()
        assert b"nan" not in draft.sealed
    # The caseload and the child's page say the wishes work is unfinished (the life story has none).
    await user.open("/")
    await user.should_see(marker="caseload", retries=50)
    listing = next(iter(user.find(marker="caseload").elements)).content  # type: ignore[attr-defined]
    card = listing[listing.index(f'data-child="{child_id}"'):]
    card = card[:card.index("</li>")]
    assert "Unfinished: wishes and feelings" in card and "life story" not in card
    assert listing.count("Unfinished:") == 1  # only this child
    await user.open(f"/child/{child_id}")
    await user.should_see("Wishes and feelings · draft", retries=50)
    await user.should_see("Life story")
    await user.should_not_see("Life story · draft")
    user.find(marker="open-wishes").click()
    await user.should_see("Draft restored", retries=50)
    assert value_of(user, "child_words") == "Half a sentence about my nan"
    assert value_of(user, "reflection") == "Quiet today"


async def test_a_child_not_on_the_caseload_is_not_found(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "chloe")
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    for path in ("wishes", "life-story", "care-plan"):
        await user.open(f"/child/{child_id}/{path}")
        await user.should_see("Child not found", retries=50)
        await user.should_not_see("Earlier work")
        await user.should_not_see("The book so far")
        await user.should_not_see("Add a plan")


def test_a_refusal_is_audited(app_store: Store) -> None:
    child_id, _ = child_of(app_store, "chloe")
    with app_store.session() as session:
        erin = session.exec(select(Worker).where(Worker.username == "erin")).one()
    for attempt in (wishes_for_child, life_story_for_child, care_plans_for_child):
        with pytest.raises(NotAllowed):
            attempt(app_store, erin, child_id)
    with app_store.session() as session:
        denied = session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                       AuditEvent.record_id == child_id)).all()
    assert len(denied) == 3


# ------------------------------------------------------------ life story


def png_with_marker(marker: str, size: tuple[int, int] = (2400, 1800)) -> bytes:
    """A photo-sized PNG carrying a text marker, as a phone's camera would hand it over."""
    image = Image.new("RGB", size, (30, 120, 200))
    ImageDraw.Draw(image).rectangle((100, 100, 900, 700), fill=(250, 200, 40))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", marker)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


async def upload(user: User, marker: str, data: bytes) -> None:
    element = next(iter(user.find(marker=marker).elements))
    assert isinstance(element, ui.upload)
    with user.client:
        await element.handle_uploads([SmallFileUpload("photo.png", "image/png", _data=data)])


async def open_life_story(user: User, child_id: str) -> None:
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}/life-story")
    await user.should_see("The book so far", retries=50)


async def test_a_life_story_entry_with_a_photo_is_added_and_the_photo_sealed_at_rest(
        user: User, app_store: Store, tmp_path: Path) -> None:
    child_id, _ = child_of(app_store, "ben")
    await open_life_story(user, child_id)
    marker = "SEEN-PHOTO-MARKER-7f3a9c"
    await upload(user, "camera", png_with_marker(marker))
    await user.should_see("1 photo ready to add", retries=50)
    set_value(user, "section", "achievements")
    user.find(marker="title").type("Riding a bike")
    user.find(marker="text").type("You rode all the way round the park.")
    user.find(marker="save").click()
    await user.should_see("Added to the life-story book", retries=50)
    await user.should_see("You rode all the way round the park.")

    with app_store.session() as session:
        entry = session.exec(select(LifeStoryEntry).where(LifeStoryEntry.child_id == child_id)
                             .order_by(LifeStoryEntry.created_at.desc())).first()
        assert entry.section == "achievements" and entry.status == "submitted"
        photo = session.exec(select(Photo).where(Photo.record_id == entry.id)).one()
        stored = open_photo(app_store, photo)
    with Image.open(io.BytesIO(stored)) as image:
        assert max(image.size) <= 1600 and image.format == "JPEG"
    # The photo as stored, opened, must appear nowhere in the database file in the clear.
    raw = (tmp_path / "app.db").read_bytes()
    assert marker.encode() not in raw
    window = stored[len(stored) // 2: len(stored) // 2 + 48]
    assert window not in raw and stored[:64] not in raw

    # The page shows the photo through the guarded route; it opens for Ben.
    assert f"/photo/{photo.id}" in {e.source for e in user.find(ui.image).elements}
    response = await user.http_client.get(f"/photo/{photo.id}")
    assert response.status_code == 200 and response.content == stored
    assert response.headers["cache-control"] == "no-store"


async def test_a_life_story_entry_is_corrected_in_place_in_the_book(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
    photo = prepare_photo(png_with_marker("kept", (300, 200)))
    entry = add_life_story_entry(app_store, ben, child_id, {
        "on": today_in_england().isoformat(), "section": "achievements", "title": "Swiming gala",
        "text": "You swam a whole length."}, [photo])
    await open_life_story(user, child_id)
    await user.should_see("Swiming gala")
    user.find(marker=f"correct-{entry.id}").click()
    await user.should_see("You are correcting", retries=50)
    await user.should_see("1 photo kept from the entry")
    assert value_of(user, "title") == "Swiming gala" and value_of(user, "section") == "achievements"
    set_value(user, "title", "")
    user.find(marker="save").click()
    await user.should_see("Nothing was changed yet", retries=50)  # a correction is checked like a new entry
    set_value(user, "title", "Swimming gala")
    user.find(marker="save").click()
    await user.should_see("Correction saved in the life-story book", retries=50)
    await user.should_see("Swimming gala")
    await user.should_not_see("Swiming gala")
    await user.should_see("Added with Ben (corrected)")
    with app_store.session() as session:
        newer = session.exec(select(LifeStoryEntry).where(LifeStoryEntry.supersedes == entry.id)).one()
        kept = session.exec(select(Photo).where(Photo.record_id == newer.id)).one()
    assert f"/photo/{kept.id}" in {e.source for e in user.find(ui.image).elements}
    # The child's timeline keeps both, each saying which it is.
    await user.open(f"/child/{child_id}")
    await user.should_see("Correction", retries=50)
    await user.should_see("Corrected by a later record")


async def test_only_the_author_is_offered_a_correction(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        manager = session.get(Worker, ben.manager_id)
    add_life_story_entry(app_store, ben, child_id, {"on": today_in_england().isoformat(), "section": "family",
                                                     "title": "Grandma's garden", "text": "Sunflowers."})
    await sign_in(user, manager.username)
    await user.open(f"/child/{child_id}/life-story")
    await user.should_see("Grandma's garden", retries=50)
    # The manager reads the book but cannot rewrite the worker's entry.
    await user.should_not_see(marker="correct")


async def test_a_photo_of_a_child_not_on_the_caseload_is_not_served(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
    image = prepare_photo(png_with_marker("x", (300, 200)))
    entry = add_life_story_entry(app_store, ben, child_id, {"on": today_in_england().isoformat(), "section": "family",
                                                             "title": "Us", "text": ""}, [image])
    with app_store.session() as session:
        photo_id = session.exec(select(Photo.id).where(Photo.record_id == entry.id)).one()
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    response = await user.http_client.get(f"/photo/{photo_id}")
    assert response.status_code == 404 and image not in response.content


async def test_a_life_story_entry_needs_a_chapter_a_title_and_a_past_date(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    await open_life_story(user, child_id)
    user.find(marker="save").click()
    await user.should_see("Choose the chapter of the life-story book", retries=50)
    await user.should_see("Give the entry a title")
    await user.should_see("Write the story for this entry, or add a photo.")
    set_value(user, "on", (today_in_england() + timedelta(days=1)).isoformat())
    set_value(user, "section", "family")
    user.find(marker="title").type("Tomorrow")
    user.find(marker="text").type("Not yet")
    user.find(marker="save").click()
    await user.should_see("The date is in the future", retries=50)
    with app_store.session() as session:
        titles = [app_store.opened(e).body.title for e in session.exec(
            select(LifeStoryEntry).where(LifeStoryEntry.child_id == child_id))]
    assert "Tomorrow" not in titles


async def test_something_that_is_not_a_photo_is_refused(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    await open_life_story(user, child_id)
    await upload(user, "library", b"%PDF-1.4 not a picture at all")
    await user.should_see("That file is not a photo Seen can read", retries=50)
    await user.should_not_see("photo ready to add")


def another_browser() -> User:
    """A second browser on the same app: its own cookies, so its own sign-in and session.

    The first browser's pages are closed first. NiceGUI's simulated users share one `ui.navigate`, taken by
    whichever user was last touched, and a page still open in the first browser touches its user whenever it
    runs JavaScript: the second browser's sign-in could then send the first browser on, and leave the second
    on the sign-in page.
    """
    for page in list(Client.instances.values()):
        page.delete()
    return User(httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url="http://test"))


def life_story_draft(store: Store, child_id: str) -> Draft | None:
    with store.session() as session:
        return session.exec(select(Draft).where(Draft.child_id == child_id,
                                                Draft.kind == LIFE_STORY_DRAFT_KIND)).first()


async def type_life_story(user: User, title: str, text: str) -> None:
    set_value(user, "section", "achievements")
    user.find(marker="title").type(title)
    user.find(marker="text").type(text)


async def test_life_story_words_are_kept_when_the_worker_leaves_and_comes_back_in_another_browser(
        user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    await open_life_story(user, child_id)
    set_value(user, "section", "achievements")  # a choice is saved at once
    await user.should_see("Draft saved", retries=50)
    user.find(marker="title").type("Sports day")
    user.find(marker="text").type("You came second in the egg and spoon")
    # Straight off to another page, before the next autosave tick: what the page held is saved as it goes.
    await user.open(f"/child/{child_id}")
    await user.open(f"/child/{child_id}/life-story")
    await user.should_see("Draft restored", retries=50)
    assert value_of(user, "title") == "Sports day"
    assert value_of(user, "text") == "You came second in the egg and spoon"
    assert value_of(user, "section") == "achievements"
    draft = life_story_draft(app_store, child_id)
    assert draft is not None and b"egg and spoon" not in draft.sealed and b"Sports" not in draft.sealed

    elsewhere = another_browser()
    async with elsewhere.http_client:
        await open_life_story(elsewhere, child_id)
        await elsewhere.should_see("Draft restored", retries=50)
        assert value_of(elsewhere, "text") == "You came second in the egg and spoon"


async def test_another_worker_never_sees_a_life_story_draft(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        manager = session.get(Worker, ben.manager_id)
    await open_life_story(user, child_id)
    await type_life_story(user, "Sports day", "You came second in the egg and spoon")
    await user.should_see("Draft saved", retries=50)
    assert life_story_draft(app_store, child_id) is not None

    elsewhere = another_browser()
    async with elsewhere.http_client:
        await sign_in(elsewhere, manager.username)
        await elsewhere.open(f"/child/{child_id}/life-story")
        await elsewhere.should_see("The book so far", retries=50)  # the manager may read the child's book
        await elsewhere.should_not_see("Draft restored")
        assert value_of(elsewhere, "title") == "" and value_of(elsewhere, "text") == ""


async def test_adding_the_entry_or_clearing_the_form_removes_its_draft(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    await open_life_story(user, child_id)
    await type_life_story(user, "Sports day", "You came second in the egg and spoon")
    await user.should_see("Draft saved", retries=50)
    user.find(marker="save").click()
    await user.should_see("Added to the life-story book", retries=50)
    assert life_story_draft(app_store, child_id) is None
    await user.open(f"/child/{child_id}/life-story")
    await user.should_see("The book so far", retries=50)
    await user.should_not_see("Draft restored")
    assert value_of(user, "title") == ""

    await type_life_story(user, "Half a thought", "Not finished")
    await user.should_see("Draft saved", retries=50)
    user.find(marker="clear").click()
    await user.should_see("Form cleared", retries=50)
    assert life_story_draft(app_store, child_id) is None and value_of(user, "title") == ""


async def test_a_life_story_correction_in_progress_is_kept_with_its_photos_choice(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
    photos = [prepare_photo(png_with_marker(m, (300, 200))) for m in ("one", "two")]
    entry = add_life_story_entry(app_store, ben, child_id, {
        "on": today_in_england().isoformat(), "section": "achievements", "title": "Swiming gala",
        "text": "You swam a whole length."}, photos)
    await open_life_story(user, child_id)
    user.find(marker=f"correct-{entry.id}").click()
    await user.should_see("2 photos kept from the entry", retries=50)
    user.find(marker="drop-kept").click()
    await user.should_see("1 photo kept from the entry", retries=50)
    set_value(user, "title", "Swimming gala")
    await user.open(f"/child/{child_id}")
    await user.open(f"/child/{child_id}/life-story")
    await user.should_see("You are correcting", retries=50)
    await user.should_see("1 photo kept from the entry")
    assert value_of(user, "title") == "Swimming gala"
    user.find(marker="save").click()
    await user.should_see("Correction saved in the life-story book", retries=50)
    assert life_story_draft(app_store, child_id) is None
    with app_store.session() as session:
        newer = session.exec(select(LifeStoryEntry).where(LifeStoryEntry.supersedes == entry.id)).one()
        assert len(session.exec(select(Photo).where(Photo.record_id == newer.id)).all()) == 1

    # Stopping a correction is discarding it: nothing comes back.
    user.find(marker=f"correct-{newer.id}").click()
    await user.should_see("You are correcting", retries=50)
    assert life_story_draft(app_store, child_id) is not None
    user.find(marker="cancel-correction").click()
    await user.should_see("Form cleared", retries=50)
    assert life_story_draft(app_store, child_id) is None


JARGON = ["LAC", "looked after", "looked-after", "Child in care", "care order", "section 20", "S20", "CiC",
          "Seenshire", "legal status", "placement", "Castle", "DEMO1"]


async def test_the_life_story_book_is_a_child_friendly_pdf(user: User, app_store: Store) -> None:
    child_id, first = child_of(app_store, "ben")
    with app_store.session() as session:
        child = session.get(Child, child_id)
        surname, legal_status = app_store.opened(child).body.last_name, child.legal_status
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
    add_life_story_entry(app_store, ben, child_id, {"on": today_in_england().isoformat(), "section": "family",
                                                    "title": "Grandma's garden", "text": "You grew sunflowers."},
                         [prepare_photo(png_with_marker("g", (800, 600)))])
    await open_life_story(user, child_id)
    user.find(marker="export").click()
    response = await user.download.next(timeout=30)
    pdf = response.content
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert f"{first}'s" in text and "Life Story Book" in text
    assert "My family" in text and "Where I was born" in text and "Grandma's garden" in text
    assert any(page.images for page in reader.pages)
    for word in [*JARGON, surname, legal_status, "Ben Castle"]:
        assert not re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE), word
    assert "Made with Ben" in text
    with app_store.session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "export",
                                                     AuditEvent.child_id == child_id)).first() is not None


def test_the_book_pdf_uncompressed_carries_its_words_in_the_clear() -> None:
    """With compression off (the test hook), the words sit in the file itself: the PDF is no image of text."""
    book = LifeStoryBook("Zed", ["Amy"], [LifeStorySection("born", "Where I was born")], {})
    raw = life_story_pdf(book, compress=False)
    assert raw.startswith(b"%PDF") and b"/FlateDecode" not in raw.split(b"stream")[0]
    assert "Zed" in PdfReader(io.BytesIO(raw)).pages[0].extract_text()


def test_a_photo_is_turned_upright_and_loses_its_location() -> None:
    image = Image.new("RGB", (400, 200), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # taken with the phone on its side
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # where it was taken
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    prepared = prepare_photo(out.getvalue())
    with Image.open(io.BytesIO(prepared)) as upright:
        assert upright.size == (200, 400)
        assert not upright.getexif()


# ------------------------------------------------------------ care plan


def actions_of(store: Store, child_id: str) -> dict[str, CarePlanAction]:
    with store.session() as session:
        return {a.id: a for a in session.exec(select(CarePlanAction).where(CarePlanAction.child_id == child_id))}


async def open_care_plan(user: User, child_id: str) -> None:
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open(f"/child/{child_id}/care-plan")
    await user.should_see("Add a plan", retries=50)


async def test_overdue_actions_stand_out_and_can_be_completed_with_an_outcome(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        plan = session.exec(select(CarePlan).where(CarePlan.child_id == child_id)).first()
    late = add_action(app_store, ben, child_id, {"plan_id": plan.id, "description": "Book the optician",
                                                 "owner": "Carer",
                                                 "due": (today_in_england() - timedelta(days=3)).isoformat()})
    await open_care_plan(user, child_id)
    await user.should_see("Book the optician")
    await user.should_see("Overdue")
    await user.should_see("overdue action")

    user.find(marker=f"complete-{late.id}").click()
    await user.should_see("Mark the action done", retries=20)
    user.find(marker="outcome-save").click()
    await user.should_see("Say what the outcome was", retries=50)
    assert actions_of(app_store, child_id)[late.id].status == "open"

    user.find(marker="outcome").type("Glasses ordered")
    user.find(marker="outcome-save").click()
    await user.should_see("Action marked done", retries=50)
    done = actions_of(app_store, child_id)[late.id]
    assert done.status == "done" and done.completed_on == today_in_england()
    assert app_store.opened(done).body.outcome == "Glasses ordered"
    clocks = json.loads(done.field_clocks)
    assert clocks["status"] == clocks["completed_on"] == clocks["body.outcome"]
    assert clocks["body.outcome"] > clocks["body.description"]
    assert done.revision == 2


async def test_a_status_change_moves_only_the_status_clock(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    action = next(a for a in actions_of(app_store, child_id).values() if a.status == "open"
                  or a.status == "in_progress")
    before = json.loads(action.field_clocks)
    target = "cancelled"
    await open_care_plan(user, child_id)
    set_value(user, f"status-{action.id}", target)
    await user.should_see("Status changed to cancelled", retries=50)
    after_row = actions_of(app_store, child_id)[action.id]
    after = json.loads(after_row.field_clocks)
    assert after_row.status == target
    assert after["status"] > before["status"]
    assert {k: v for k, v in after.items() if k != "status"} == {k: v for k, v in before.items() if k != "status"}


async def test_plans_and_actions_are_added_and_bad_ones_refused(user: User, app_store: Store) -> None:
    child_id, _ = child_of(app_store, "ben")
    await open_care_plan(user, child_id)
    user.find(marker="plan-save").click()
    await user.should_see("Choose the kind of plan", retries=50)
    set_value(user, "plan-kind", "pep")
    set_value(user, "plan-start", (today_in_england() + timedelta(days=10)).isoformat())
    user.find(marker="plan-save").click()
    await user.should_see("The date is in the future", retries=50)
    set_value(user, "plan-start", today_in_england().isoformat())
    user.find(marker="plan-summary").type("Reading support at school")
    user.find(marker="plan-save").click()
    await user.should_see("Plan added", retries=50)
    await user.should_see("Personal education plan")
    with app_store.session() as session:
        pep = session.exec(select(CarePlan).where(CarePlan.child_id == child_id, CarePlan.kind == "pep")).one()

    user.find(marker=f"action-save-{pep.id}").click()
    await user.should_see("Say what needs to be done", retries=50)
    await user.should_see("Say who will do it")
    user.find(marker=f"action-description-{pep.id}").type("Phonics catch-up sessions")
    user.find(marker=f"action-owner-{pep.id}").type("Designated teacher")
    set_value(user, f"action-due-{pep.id}", (today_in_england() + timedelta(days=30)).isoformat())
    user.find(marker=f"action-save-{pep.id}").click()
    await user.should_see("Action added", retries=50)
    await user.should_see("Phonics catch-up sessions")
    added = [a for a in actions_of(app_store, child_id).values() if a.plan_id == pep.id]
    assert len(added) == 1 and added[0].status == "open"
    assert app_store.opened(added[0]).body.owner == "Designated teacher"

"""Life-story photos taken with no signal, in a real chromium at a phone's size.

A photo picked on the life-story screen after the connection drops is made small in the browser, kept
sealed with the entry's draft (neither the words nor the image readable in IndexedDB), shown as a thumbnail
on the offline page (where a worker can add another or remove one) and, when the signal returns, stored
with its entry exactly once, even when the answer to the send is lost. A photo picked while the page still
had its connection is kept too if the signal goes before the entry is added; when the same page gets its
connection back, it holds both photos again and the phone lets go of its copy; so is one whose upload failed
as the signal went, which reaches the page when it is back. And a worker who opens Seen
with no signal at all starts a life-story entry on the offline page, takes its photo there, and it arrives.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from storage.models import LifeStoryEntry, Photo
from storage.photos import open_photo
from storage.timescales.calendar import today_in_england
from tests.browser_support import (
    LiveServer,
    assert_sealed_on_the_phone,
    ben_and_child,
    check_screen,
    read_indexeddb,
    screenshot,
    sign_in,
    wait_connected,
    wait_for_caseload_copy,
    wait_for_worker,
    wait_status,
)

pytestmark = pytest.mark.browser

TITLE = "Sports day at Hillside"
STORY = "You came second in the egg and spoon race and Nan cheered so loudly the whole field turned round."
EXIF_MARKER = "SEEN-EXIF-MARKER-Carers-Address"

# The photo the worker took, as this test hands it to the page, and as it must arrive.
PHOTO_OPENED = """async () => {
  const draft = (await SeenDrafts.listDrafts())[0];
  const photo = draft.photos[0];
  const bytes = new Uint8Array(await (await SeenDrafts.photoBlob(draft.id, photo.id)).arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return {data: btoa(text), width: photo.width, height: photo.height};
}"""


def camera_photo(path: Path, size: tuple[int, int] = (2400, 1800), *, turned: bool = False) -> Path:
    """A phone camera's JPEG, larger than a life-story book needs: EXIF with a description and, when `turned`,
    the orientation tag that says it must be turned a quarter to stand upright. Few colours: a small file."""
    image = Image.new("RGB", size, (40, 110, 190))
    image.paste((250, 210, 40), (0, 0, size[0] // 3, size[1] // 3))
    image.paste((200, 40, 60), (size[0] // 2, size[1] // 2, size[0], size[1]))
    exif = Image.Exif()
    exif[0x010E] = EXIF_MARKER  # ImageDescription
    if turned:
        exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to view
    image.save(path, "JPEG", quality=85, exif=exif.tobytes())
    return path


def entries_with_photos(server: LiveServer, child_id: str, title: str) -> list[tuple[LifeStoryEntry, list[bytes]]]:
    """The child's life-story entries called `title`, opened, each with its photos' images."""
    store = server.store()
    try:
        with store.session() as session:
            found = []
            for entry in session.exec(select(LifeStoryEntry).where(LifeStoryEntry.child_id == child_id)):
                opened = store.opened(entry)
                if opened.title != title:
                    continue
                photos = session.exec(select(Photo).where(Photo.record_id == entry.id)
                                      .order_by(Photo.created_at, Photo.id)).all()
                found.append((opened, [open_photo(store, p) for p in photos]))
            return found
    finally:
        store.engine.dispose()


def open_life_story(page, child_id: str) -> None:
    sign_in(page, "ben")
    wait_for_worker(page)
    wait_for_caseload_copy(page)
    page.goto(f"/child/{child_id}/life-story")
    page.get_by_role("heading", name="The book so far").wait_for()
    wait_connected(page)


def draft_photo_count(page) -> int:
    return page.evaluate("SeenDrafts.listDrafts().then(ds => ds.reduce((n, d) => n + (d.photos || []).length, 0))")


def wait_until(page, check, what: str) -> None:
    for _ in range(200):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError(what)


def test_a_photo_taken_with_no_signal_is_kept_sealed_and_stored_once_with_its_entry(
        page, context, live_server: LiveServer, tmp_path: Path) -> None:
    child_id = ben_and_child(live_server)[1]
    open_life_story(page, child_id)
    page.get_by_label("Chapter of the book").click()
    page.get_by_role("option", name="My achievements").click()
    page.locator('[data-field="section"]').get_by_text("My achievements").wait_for()
    page.get_by_label("Title").fill(TITLE)

    context.set_offline(True)
    wait_status(page, "Offline · 1 draft waiting")
    page.get_by_label("The story, written for the child").fill(STORY)
    taken = camera_photo(tmp_path / "camera.jpg", turned=True)
    page.locator("input[type=file][capture]").set_input_files(str(taken))
    page.get_by_text("1 photo is kept sealed on this phone with this entry").wait_for()
    page.evaluate("SeenPage.flush()")

    # Neither the words nor the photo are readable in the browser's storage.
    assert_sealed_on_the_phone(page, TITLE, STORY, "egg and spoon", child_id)
    kept = page.evaluate(PHOTO_OPENED)
    image = base64.b64decode(kept["data"])
    stores = read_indexeddb(page)["stores"]
    assert len(stores["photos"]) == 1
    everything = "".join(record for records in stores.values() for record in records)  # a byte a character
    original = taken.read_bytes()
    for window in (image[:64], image[len(image) // 2: len(image) // 2 + 48], original[:64],
                   original[len(original) // 2: len(original) // 2 + 48], b"JFIF", EXIF_MARKER.encode()):
        assert window.decode("latin-1") not in everything, "the photo is in IndexedDB unsealed"
    # Made small in the browser, turned upright, and without the camera's metadata.
    with Image.open(io.BytesIO(image)) as opened:
        assert opened.format == "JPEG" and opened.size == (1200, 1600) == (kept["width"], kept["height"])
    assert EXIF_MARKER.encode() not in image

    # Reloaded with no signal: the offline page shows the draft with its photo.
    page.reload()
    page.get_by_role("heading", name="Seen · offline").wait_for()
    page.locator("[data-draft] [data-photos='1'] img").wait_for()
    page.get_by_role("button", name="Open draft: Life story entry").click()
    thumbnail = page.get_by_role("img", name="Photo 1 of 1")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    assert page.get_by_label("The story, written for the child").input_value() == STORY

    # Another photo, then the worker thinks better of it.
    page.locator("#photos input[data-pick=library]").set_input_files(str(camera_photo(tmp_path / "other.jpg", (800, 600))))
    page.get_by_role("img", name="Photo 2 of 2").wait_for()
    check_screen(page, "offline-life-story-photos-phone")  # nothing cut off at 360 px; axe-core finds nothing serious
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove photo 2").click()
    page.get_by_role("img", name="Photo 1 of 1").wait_for()
    assert page.get_by_role("img", name="Photo 2 of 2").count() == 0
    assert len(read_indexeddb(page)["stores"]["photos"]) == 1  # deleted from the phone, not just hidden

    page.get_by_role("button", name="Submit life story entry").click()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()
    assert entries_with_photos(live_server, child_id, TITLE) == []

    # The first send reaches the server, but its answer is lost with the signal: the phone sends it again.
    attempts: list[bool] = []  # one for each send, counted once it is over

    def flap(route) -> None:
        if attempts:
            attempts.append(True)
            route.continue_()
            return
        route.fetch()  # the server stores the entry...
        context.set_offline(True)  # ...and the signal goes before its answer reaches the phone
        route.abort("internetdisconnected")
        attempts.append(True)  # only now: the test reads the store once this send is over

    context.route("**/api/offline/drafts", flap)
    context.set_offline(False)
    wait_until(page, lambda: bool(attempts), "the phone never tried to send the draft")
    assert len(entries_with_photos(live_server, child_id, TITLE)) == 1  # stored by the cut-off send
    assert page.evaluate("SeenDrafts.counts()")["total"] == 1  # not acknowledged: still on the phone

    context.set_offline(False)
    wait_status(page, "Online", timeout=30000)
    assert len(attempts) >= 2
    page.get_by_text("1 record sent to Seen and stored.").wait_for()
    [(entry, photos)] = entries_with_photos(live_server, child_id, TITLE)
    assert entry.text == STORY and entry.section == "achievements" and entry.status == "submitted"
    assert len(photos) == 1  # once, though it was sent twice
    with Image.open(io.BytesIO(photos[0])) as stored:
        assert stored.format == "JPEG" and stored.size == (1200, 1600)
    assert EXIF_MARKER.encode() not in photos[0]
    assert read_indexeddb(page)["stores"]["photos"] == []  # acknowledged: the phone let go of it


def test_photos_picked_before_and_after_the_signal_goes_are_back_on_the_page_when_it_returns(
        page, context, live_server: LiveServer, tmp_path: Path) -> None:
    child_id = ben_and_child(live_server)[1]
    open_life_story(page, child_id)
    # One photo while the signal is there: the server holds it for the entry not yet added.
    page.locator("input[type=file][capture]").set_input_files(str(camera_photo(tmp_path / "first.jpg", (1200, 900))))
    page.get_by_text("1 photo ready to add").wait_for()

    context.set_offline(True)
    wait_status(page, "Offline · 1 draft waiting")
    # Only the server had that photo: the phone keeps its copy with the draft.
    wait_until(page, lambda: draft_photo_count(page) == 1, "the photo picked online was not kept with the draft")
    page.locator("input[type=file][capture]").set_input_files(str(camera_photo(tmp_path / "second.jpg", (900, 1200))))
    page.get_by_text("2 photos are kept sealed on this phone with this entry").wait_for()
    assert draft_photo_count(page) == 2
    screenshot(page, "life-story-photo-kept-offline-phone")

    # The same page gets its connection back: it shows both photos, and the phone lets go of the draft.
    context.set_offline(False)
    page.get_by_text("2 photos ready to add").wait_for(timeout=30000)
    wait_status(page, "Online", timeout=30000)
    assert page.evaluate("SeenDrafts.counts()")["total"] == 0
    assert read_indexeddb(page)["stores"]["photos"] == []
    assert page.locator("#seen-photo-note").count() == 0

    page.get_by_label("Chapter of the book").click()
    page.get_by_role("option", name="My achievements").click()
    page.locator('[data-field="section"]').get_by_text("My achievements").wait_for()
    page.get_by_label("Title").fill(TITLE)
    page.get_by_role("button", name="Add to the book").click()
    page.get_by_text("Added to the life-story book").wait_for()
    [(_, photos)] = entries_with_photos(live_server, child_id, TITLE)
    sizes = set()
    for image in photos:
        with Image.open(io.BytesIO(image)) as stored:
            sizes.add(stored.size)
    assert sizes == {(1200, 900), (900, 1200)}
    assert page.evaluate("SeenDrafts.counts()")["total"] == 0


def test_a_life_story_entry_started_on_the_offline_page_is_stored_with_its_photo(
        page, context, live_server: LiveServer, tmp_path: Path) -> None:
    child_id = ben_and_child(live_server)[1]
    sign_in(page, "ben")
    wait_for_worker(page)
    wait_for_caseload_copy(page)
    context.set_offline(True)
    page.goto("/offline")  # served by the service worker: there is no signal
    page.get_by_role("heading", name="Seen · offline").wait_for()
    page.get_by_role("button", name="Start a life-story entry").click()
    page.get_by_label("Child", exact=True).select_option(child_id)
    assert page.get_by_label("Date").input_value() == today_in_england().isoformat()
    page.get_by_label("Chapter of the book").select_option("family")
    page.get_by_label("Title").fill("Grandad's allotment")
    # No words: the photo tells this one.
    page.locator("#photos input[data-pick=camera]").set_input_files(str(camera_photo(tmp_path / "plot.jpg", (1000, 750))))
    page.get_by_role("img", name="Photo 1 of 1").wait_for()
    page.get_by_role("button", name="Submit life story entry").click()
    page.get_by_text("Submitted. It will be sent to Seen").wait_for()
    assert entries_with_photos(live_server, child_id, "Grandad's allotment") == []

    context.set_offline(False)
    page.get_by_text("1 record sent to Seen and stored.").wait_for(timeout=30000)
    [(entry, photos)] = entries_with_photos(live_server, child_id, "Grandad's allotment")
    assert entry.section == "family" and entry.text == "" and entry.on == today_in_england()
    assert len(photos) == 1
    with Image.open(io.BytesIO(photos[0])) as stored:
        assert stored.format == "JPEG" and stored.size == (1000, 750)


def test_a_photo_whose_upload_failed_is_kept_and_reaches_the_page_when_the_signal_returns(
        page, context, live_server: LiveServer, tmp_path: Path) -> None:
    child_id = ben_and_child(live_server)[1]
    open_life_story(page, child_id)
    # The signal is failing: the photo's upload does not get through, then the connection goes altogether.
    failed: list[str] = []

    def upload_fails(route) -> None:
        failed.append(route.request.url)
        route.abort("internetdisconnected")

    page.route("**/upload/**", upload_fails)
    page.locator("input[type=file][capture]").set_input_files(str(camera_photo(tmp_path / "lost.jpg", (1200, 900))))
    wait_until(page, lambda: bool(failed), "the page never tried to upload the photo")
    assert page.get_by_text("photo ready to add").count() == 0
    context.set_offline(True)
    wait_status(page, "Offline · 1 draft waiting")
    wait_until(page, lambda: draft_photo_count(page) == 1, "the photo whose upload failed was not kept")

    page.unroute("**/upload/**")
    context.set_offline(False)
    page.get_by_text("1 photo ready to add").wait_for(timeout=30000)
    wait_status(page, "Online", timeout=30000)
    assert read_indexeddb(page)["stores"]["photos"] == []


# What a phone running the Seen before photos holds: its version-1 offline store, with one sealed draft.
VERSION_1_STORE = """async (draft) => {
  const db = await new Promise((ok, no) => {
    const r = indexedDB.open('seen-offline', 1);
    r.onupgradeneeded = () => { r.result.createObjectStore('keys'); r.result.createObjectStore('drafts', {keyPath: 'id'});
                                r.result.createObjectStore('meta'); };
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error);
  });
  const key = await crypto.subtle.generateKey({name: 'AES-GCM', length: 256}, false, ['encrypt', 'decrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const {id, state, updated, ...content} = draft;
  const data = await crypto.subtle.encrypt({name: 'AES-GCM', iv, additionalData: new TextEncoder().encode('seen:draft:' + id)},
                                           key, new TextEncoder().encode(JSON.stringify(content)));
  await new Promise((ok, no) => {
    const tx = db.transaction(['keys', 'drafts'], 'readwrite');
    tx.objectStore('keys').put(key, 'drafts-key');
    tx.objectStore('drafts').put({id, state, updated, sealed: {iv, data}});
    tx.oncomplete = ok; tx.onerror = () => no(tx.error);
  });
  db.close();
}"""


def test_a_draft_kept_by_the_seen_before_photos_survives_the_upgrade(page, live_server: LiveServer) -> None:
    child_id = ben_and_child(live_server)[1]
    page.goto("/status")  # the app's origin, with none of its scripts
    now = "2026-01-01T10:00:00.000Z"
    page.evaluate(VERSION_1_STORE, {
        "id": "5b0e6a56-0d0c-4c55-9c53-0a8f0c1d2e3f", "kind": "life_story", "childId": child_id, "childLabel": "M.E., 4",
        "fields": {"on": "2026-01-01", "section": "family", "title": "New Year with Nan", "text": STORY},
        "source": "form", "pageId": "", "workerId": "", "state": "writing", "created": now, "updated": now,
        "problems": {}, "message": ""})
    page.goto("/offline")
    page.get_by_role("button", name="Open draft: Life story entry").click()
    assert page.get_by_label("The story, written for the child").input_value() == STORY
    # The upgraded store takes photos for it.
    assert "photos" in read_indexeddb(page)["stores"]
    page.get_by_role("button", name="Take a photo").wait_for()

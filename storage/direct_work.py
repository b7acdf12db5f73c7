"""Direct work with the child: wishes and feelings, life-story entries and their photos, and care plans.

Forms travel as plain dicts of strings, like the visit form (see storage/visits.py):

    wishes and feelings: on "YYYY-MM-DD", method (a WISHES_METHODS code), child_words, reflection,
        shared_with, supersedes (the id of the record it corrects, or "").
    life story: on, section (a LIFE_STORY_SECTIONS code), title, text.
    care plan: kind (a PLAN_KINDS code), start, summary.
    care plan action: plan_id, description, owner, due ("" for none).

A wishes-and-feelings or life-story form being typed is kept as a sealed draft (storage/visits.save_draft,
kinds WISHES_DRAFT_KIND and LIFE_STORY_DRAFT_KIND), deleted when the record it becomes is stored.

Wishes and feelings and life-story entries are immutable once saved: a correction is a new record whose
`supersedes` names the old one. Care plans and their actions are mutable: each change names the fields it
touched so their per-field clocks (and so sync's field-by-field merge) are right.

Every function takes the signed-in worker and goes through `Store.child_for`, so a child the worker may
not see is refused (and the refusal audited) the same way everywhere.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlmodel import Session, col, select

from storage import audit, policy
from storage.models import (
    ACTION_STATUSES,
    LIFE_STORY_SECTIONS,
    PLAN_KINDS,
    WISHES_METHODS,
    CarePlan,
    CarePlanAction,
    CarePlanActionBody,
    CarePlanBody,
    Child,
    LifeStoryBody,
    LifeStoryEntry,
    Photo,
    RecordStatus,
    WishesAndFeelings,
    WishesBody,
    Worker,
    utcnow,
)
from storage.record_dates import CONFIRM_FIELD, check_dates
from storage.store import NotAllowed, Store
from storage.submissions import KEY_FIELD, already_made, key_of, make_once, new_key
from storage.timescales.calendar import today_in_england
from storage.visits import discard_in

# The kinds of their drafts (storage/visits.save_draft): one draft per worker, child and kind.
WISHES_DRAFT_KIND = "wishes_and_feelings"
LIFE_STORY_DRAFT_KIND = "life_story"
WISHES_TEXT_FIELDS = ("child_words", "reflection", "shared_with")
ACTION_STATUS_WORDS = {"open": "Open", "in_progress": "In progress", "done": "Done", "cancelled": "Cancelled"}
OPEN_STATUSES = ("open", "in_progress")
# Phones take 12-megapixel photos; a life-story book needs far less, and sealed rows stay small.
PHOTO_MAX_SIDE = 1600
PHOTO_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
PHOTOS_PER_ENTRY = 6
# The largest photo sync takes. A prepared photo is at most about 1.8 MB (1600 px square of pure noise at
# quality 85; real photos are a few hundred KB): twice that and more, so none is refused.
PHOTO_MAX_SYNCED_BYTES = 4 * 1024 * 1024
# Photos kept with an offline draft come home in the draft's one request. The phone makes them no bigger than
# PHOTO_MAX_SIDE before sealing them (a few hundred KB each), so these caps only stop a draft Seen did not make.
DRAFT_PHOTO_MAX_BYTES = PHOTO_MAX_SYNCED_BYTES
DRAFT_PHOTOS_MAX_BYTES = 12 * 1024 * 1024  # all of one entry's photos together
IMAGE_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}


class FormInvalid(ValueError):
    """The form cannot be saved as it is: `problems` maps each field to what to do about it."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(" ".join(problems.values()))
        self.problems = problems



def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def _past_date(fields: dict[str, Any], name: str, today: date, what: str, problems: dict[str, str]) -> date | None:
    """A date that has happened: today or before. Adds a plain-English problem otherwise."""
    text = _text(fields, name)
    if not text:
        problems[name] = f"Enter the date of the {what}."
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        problems[name] = f"Enter the date of the {what} as a date, like {today:%Y-%m-%d}."
        return None
    if day > today:
        problems[name] = f"The date is in the future. Enter the day the {what} happened."
        return None
    return day


def _check_child_dates(store: Store, session: Session, worker: Worker, child: Child, kind: str, name: str,
                       day: date | None, what: str, fields: dict[str, Any], device_id: str | None = None, *,
                       confirmable: bool = True) -> None:
    """Raises FormInvalid for a date before the child's birth, or one before the case opened that the worker
    has not confirmed (storage/record_dates.py)."""
    problems = check_dates(store, session, worker, child, kind, {name: (day, what, confirmable)}, fields,
                           device_id=device_id)
    if problems:
        raise FormInvalid(problems)


def first_name(display_name: str) -> str:
    return display_name.split()[0] if display_name.strip() else ""


def _workers(session: Session, ids: set[str]) -> dict[str, Worker]:
    if not ids:
        return {}
    return {w.id: w for w in session.exec(select(Worker).where(col(Worker.id).in_(ids)))}


# ============================================================ wishes and feelings


def blank_wishes_form(today: date | None = None) -> dict[str, str]:
    """A new piece of direct work: dated today, a conversation; the words still to be written."""
    return {"on": (today or today_in_england()).isoformat(), "method": "conversation",
            **{name: "" for name in WISHES_TEXT_FIELDS}, "supersedes": "", KEY_FIELD: new_key()}


@dataclass
class CheckedWishes:
    on: date
    method: str
    body: WishesBody
    supersedes: str | None
    date_confirmed: str = ""  # the date the worker confirmed though it is before the case opened


def check_wishes(fields: dict[str, Any], today: date | None = None) -> CheckedWishes:
    """Checks a wishes-and-feelings form; raises FormInvalid saying what to fix."""
    today = today or today_in_england()
    problems: dict[str, str] = {}
    on = _past_date(fields, "on", today, "direct work", problems)
    method = _text(fields, "method")
    if method not in WISHES_METHODS:
        problems["method"] = "Choose how you worked with the child (conversation, three houses, drawing...)."
    if not _text(fields, "child_words"):
        problems["child_words"] = "Write the child's words, as they said them: this record is for their voice."
    if problems:
        raise FormInvalid(problems)
    assert on is not None
    body = WishesBody(**{name: _text(fields, name) for name in WISHES_TEXT_FIELDS})
    return CheckedWishes(on=on, method=method, body=body, supersedes=_text(fields, "supersedes") or None,
                         date_confirmed=_text(fields, CONFIRM_FIELD))


def _check_wishes_correction(session: Session, worker: Worker, child_id: str, old_id: str) -> WishesAndFeelings:
    old = session.get(WishesAndFeelings, old_id)
    refusal = policy.why_not_correct(policy.actor(worker, ()), child_id, old)
    if refusal is not None:
        raise FormInvalid({"supersedes": "The record you are correcting could not be found."
                           if refusal.rule == "bad_correction" else refusal.message})
    assert old is not None
    newer = session.exec(select(WishesAndFeelings.id).where(WishesAndFeelings.supersedes == old_id)).first()
    if newer is not None:
        raise FormInvalid({"supersedes": "This record has already been corrected: correct the newer one."})
    return old


def submit_wishes(store: Store, worker: Worker, child_id: str, fields: dict[str, Any], *,
                  today: date | None = None, device_id: str | None = None) -> WishesAndFeelings:
    """Checks, seals and stores the work as submitted (immutable from now on), and discards the draft.

    A form carrying its submission key is stored once per key (storage/submissions.py): sent again, even
    emptied, it returns the record stored the first time. Raises FormInvalid (nothing stored) when the form
    needs fixing, NotAllowed for a child the worker may not see or a key another worker used.
    """
    key = key_of(fields)
    if key:
        return submit_wishes_from_draft(store, worker, child_id, fields, key, today=today, device_id=device_id)
    checked = check_wishes(fields, today)
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        return _store_wishes(store, session, worker, child, checked)


def _store_wishes(store: Store, session: Session, worker: Worker, child: Child, checked: CheckedWishes,
                  device_id: str | None = None, key: str | None = None) -> WishesAndFeelings:
    _check_child_dates(store, session, worker, child, "wishes_and_feelings", "on", checked.on, "direct work",
                       {CONFIRM_FIELD: checked.date_confirmed}, device_id)
    if checked.supersedes:
        _check_wishes_correction(session, worker, child.id, checked.supersedes)
    now = utcnow()
    record = WishesAndFeelings(child_id=child.id, worker_id=worker.id, on=checked.on, method=checked.method,
                               status=RecordStatus.submitted.value, created_at=now, submitted_at=now,
                               supersedes=checked.supersedes, submission_key=key)
    store.write(session, record, checked.body, actor=worker, device_id=device_id, action="submit")
    discard_in(session, worker, child.id, WISHES_DRAFT_KIND)
    return record


def submit_wishes_from_draft(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                             idempotency_key: str, *, today: date | None = None,
                             device_id: str | None = None) -> WishesAndFeelings:
    """Stores wishes and feelings exactly once per key: the screen's submission key or an offline draft's
    idempotency key, one key space (storage/submissions.py).

    The same checks as the screen (FormInvalid, nothing stored); a retry with a used key returns the
    record stored the first time, before the form is checked again.
    """
    existing = already_made(store, worker, idempotency_key.strip(), "wishes_and_feelings")
    if existing is not None:
        return existing
    checked = check_wishes(fields, today)
    return make_once(store, worker, child_id, idempotency_key, "wishes_and_feelings",
                     lambda session, child: _store_wishes(store, session, worker, child, checked, device_id,
                                                          idempotency_key.strip()),
                     device_id=device_id)


@dataclass
class WishesView:
    id: str
    on: date
    method: str
    method_words: str
    child_words: str
    reflection: str
    shared_with: str
    worker_first_name: str
    supersedes: str | None
    superseded_by: str | None
    correctable: bool


@dataclass
class ChildHeading:
    """Just enough of the child for a screen's heading: the name the child goes by."""

    child_id: str
    name: str
    first_name: str
    born: date | None = None  # date pickers offer nothing before it


def _heading(store: Store, child: Child) -> ChildHeading:
    body = store.opened(child).body
    return ChildHeading(child.id, body.name, body.preferred_name or body.first_name, body.date_of_birth)


def _read(session: Session, worker: Worker, child: Child, kind: str) -> None:
    audit.append(session, "read", kind, child.id, worker_id=worker.id, child_id=child.id)


def wishes_for_child(store: Store, worker: Worker, child_id: str) -> tuple[ChildHeading, list[WishesView]]:
    """The child's wishes-and-feelings work, newest first. Reading it is audited."""
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        _read(session, worker, child, "wishes_and_feelings")
        rows = list(session.exec(select(WishesAndFeelings).where(
            WishesAndFeelings.child_id == child.id, WishesAndFeelings.status != RecordStatus.draft.value)
            .order_by(col(WishesAndFeelings.on).desc(), col(WishesAndFeelings.created_at).desc())))
        names = _workers(session, {r.worker_id for r in rows})
        superseded_by = {r.supersedes: r.id for r in rows if r.supersedes}
        views = []
        for row in rows:
            body: WishesBody = store.opened(row).body
            author = names.get(row.worker_id)
            views.append(WishesView(
                id=row.id, on=row.on, method=row.method, method_words=WISHES_METHODS.get(row.method, row.method),
                child_words=body.child_words, reflection=body.reflection, shared_with=body.shared_with,
                worker_first_name=first_name(author.display_name) if author else "",
                supersedes=row.supersedes, superseded_by=superseded_by.get(row.id),
                correctable=row.worker_id == worker.id and row.id not in superseded_by))
        return _heading(store, child), views


def wishes_correction_form(store: Store, worker: Worker, child_id: str, record_id: str) -> dict[str, str]:
    """A new form prefilled from a saved record, to correct it (the new record supersedes the old)."""
    with store.session() as session:
        store.child_for(session, worker, child_id)
        old = _check_wishes_correction(session, worker, child_id, record_id)
        body: WishesBody = store.opened(old).body
    return {"on": old.on.isoformat(), "method": old.method, "child_words": body.child_words,
            "reflection": body.reflection, "shared_with": body.shared_with, "supersedes": old.id}


# ============================================================ photos


def prepare_photo(data: bytes) -> bytes:
    """The photo as a JPEG no bigger than PHOTO_MAX_SIDE, turned upright; raises FormInvalid if not an image.

    Re-encoding also drops the camera's metadata (EXIF), which can hold where the photo was taken: a
    child's life-story photo must not carry their carers' address.
    """
    if len(data) > PHOTO_MAX_UPLOAD_BYTES:
        raise FormInvalid({"photo": "That photo is too big (over 25 MB). Take it again at a smaller size."})
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise FormInvalid({"photo": "That file is not a photo Seen can read. Choose a JPEG or PNG photo."}) from None
    upright.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
    if upright.mode != "RGB":
        # Transparent PNGs go onto white, as they would look printed.
        background = Image.new("RGB", upright.size, "white")
        rgba = upright.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        upright = background
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def prepare_draft_photos(photos: list[bytes]) -> list[bytes]:
    """The photos sent with an offline draft, each prepared as the screen prepares one (upright JPEG, no EXIF,
    no bigger than PHOTO_MAX_SIDE). Raises FormInvalid naming the first photo that is too big or not a photo.
    """
    total = sum(len(data) for data in photos)
    if total > DRAFT_PHOTOS_MAX_BYTES:
        raise FormInvalid({"photo": f"This entry's photos come to {_megabytes(total)}, more than Seen takes for one "
                                    f"entry ({_megabytes(DRAFT_PHOTOS_MAX_BYTES)}). Remove a photo, or put it in "
                                    "another entry."})
    prepared = []
    for number, data in enumerate(photos, start=1):
        which = f"Photo {number}" if len(photos) > 1 else "The photo"
        if len(data) > DRAFT_PHOTO_MAX_BYTES:
            raise FormInvalid({"photo": f"{which} is too big to send (over {_megabytes(DRAFT_PHOTO_MAX_BYTES)}). "
                                        "Remove it and take it again at a smaller size."})
        try:
            prepared.append(prepare_photo(data))
        except FormInvalid:
            raise FormInvalid({"photo": f"{which} is not a photo Seen can read. Remove it, and choose a JPEG or "
                                        "PNG photo."}) from None
    return prepared


def image_from_sync(photo_id: str, mime: str, encoded: Any) -> bytes:
    """A synced photo's image, from its change's base64; raises ValueError saying what is wrong with it.

    Sync takes only what `prepare_photo` makes (a JPEG, or a PNG from before it re-encoded everything),
    no bigger than a prepared photo can be, and of the type its record says: the bytes are served with
    that type, so a photo must not be something else (a page) in disguise.
    """
    what = f"The photo {photo_id}"
    if not isinstance(encoded, str) or not encoded:
        raise ValueError(f"{what} came without its image (an older version of Seen sends photos without "
                         "them): update Seen on the device that took it, then sync again.")
    if len(encoded) > PHOTO_MAX_SYNCED_BYTES * 4 // 3 + 4:
        raise ValueError(f"{what} is too big to sync (over {PHOTO_MAX_SYNCED_BYTES // (1024 * 1024)} MB); "
                         "Seen makes photos far smaller, so this one was not made by Seen.")
    try:
        image = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ValueError(f"{what}'s image is not valid base64.") from None
    kind = next((m for m, magic in IMAGE_MAGIC.items() if image.startswith(magic)), None)
    if kind is None:
        raise ValueError(f"{what}'s image is not a JPEG or PNG photo.")
    if kind != mime:
        raise ValueError(f"{what} says it is {mime or 'of no type'} but its image is {kind}.")
    return image


def open_photo(store: Store, photo: Photo) -> bytes:
    return store.sealer.open_bytes("photo", photo.id, photo.sealed)


def photo_for_worker(store: Store, worker: Worker, photo_id: str) -> tuple[bytes, str]:
    """A photo's bytes and type, for a worker who may see its child; NotAllowed (audited) otherwise."""
    with store.session() as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            # Audited by session_scope once this transaction has rolled back, like every refusal.
            raise NotAllowed("That photo does not exist.", kind="photo", record_id=photo_id, worker_id=worker.id)
        store.child_for(session, worker, photo.child_id)
        audit.append(session, "read", "photo", photo.id, worker_id=worker.id, child_id=photo.child_id)
        return open_photo(store, photo), photo.mime


# ============================================================ life story


def blank_life_story_form(today: date | None = None) -> dict[str, str]:
    return {"on": (today or today_in_england()).isoformat(), "section": "", "title": "", "text": "",
            KEY_FIELD: new_key()}


def check_life_story(fields: dict[str, Any], photos: int, today: date | None = None) -> tuple[date, str, LifeStoryBody]:
    """Checks a life-story entry (with `photos` photos attached); raises FormInvalid saying what to fix."""
    today = today or today_in_england()
    problems: dict[str, str] = {}
    on = _past_date(fields, "on", today, "entry", problems)
    section = _text(fields, "section")
    if section not in LIFE_STORY_SECTIONS:
        problems["section"] = "Choose the chapter of the life-story book this belongs in."
    if not _text(fields, "title"):
        problems["title"] = "Give the entry a title, like \"My first day at school\"."
    if not _text(fields, "text") and photos == 0:
        problems["text"] = "Write the story for this entry, or add a photo."
    if photos > PHOTOS_PER_ENTRY:
        problems["photo"] = f"An entry can hold up to {PHOTOS_PER_ENTRY} photos. Remove some, or add another entry."
    if problems:
        raise FormInvalid(problems)
    assert on is not None
    return on, section, LifeStoryBody(title=_text(fields, "title"), text=_text(fields, "text"))


def add_life_story_entry(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                         photos: list[bytes] | None = None, *, today: date | None = None) -> LifeStoryEntry:
    """Saves a life-story entry and its photos (each prepared by `prepare_photo`), sealed, in one transaction;
    once per submission key when the form carries one (a second tap returns the entry the first one added)."""
    key = key_of(fields)
    existing = already_made(store, worker, key, "life_story") if key else None
    if existing is not None:
        return existing
    photos = photos or []
    on, section, body = check_life_story(fields, len(photos), today)
    return _life_story_once(store, worker, child_id, key, lambda session, child, k: _store_life_story(
        store, session, worker, child, on, section, body, photos, key=k))


def correct_life_story_entry(store: Store, worker: Worker, child_id: str, old_id: str, fields: dict[str, Any],
                             keep_photo_ids: list[str], photos: list[bytes] | None = None, *,
                             today: date | None = None) -> LifeStoryEntry:
    """Replaces an entry with a corrected one, in one transaction. The old entry is kept as it was (the
    book leaves it out); the new one carries the photos kept from it, then any new ones.

    Only the entry's author may correct it, once (then correct the newer one). A photo not in the old entry
    cannot be kept. Raises FormInvalid (nothing stored) or NotAllowed, as adding does; once per submission key,
    as adding is.
    """
    key = key_of(fields)
    existing = already_made(store, worker, key, "life_story") if key else None
    if existing is not None:
        return existing
    photos = photos or []
    on, section, body = check_life_story(fields, len(keep_photo_ids) + len(photos), today)

    def store_it(session: Session, child: Child, k: str | None) -> LifeStoryEntry:
        kept = _photos_kept_from(store, session, worker, child, old_id, keep_photo_ids)
        return _store_life_story(store, session, worker, child, on, section, body, kept + photos,
                                 supersedes=old_id, key=k)

    return _life_story_once(store, worker, child_id, key, store_it)


def _life_story_once(store: Store, worker: Worker, child_id: str, key: str,
                     store_it: Callable[[Session, Child, str | None], LifeStoryEntry]) -> LifeStoryEntry:
    if key:
        return make_once(store, worker, child_id, key, "life_story",
                         lambda session, child: store_it(session, child, key))
    with store.session() as session:
        return store_it(session, store.child_for(session, worker, child_id), None)


def _photos_kept_from(store: Store, session: Session, worker: Worker, child: Child, old_id: str,
                      keep_photo_ids: list[str]) -> list[bytes]:
    """The images of the old entry's photos a correction keeps, once the old entry is found to be one this
    worker may correct now (theirs, this child's, not corrected already); FormInvalid says why not."""
    old = session.get(LifeStoryEntry, old_id)
    if old is None or old.child_id != child.id or old.status == RecordStatus.draft.value:
        raise FormInvalid({"supersedes": "The entry you are correcting could not be found."})
    if old.worker_id != worker.id:
        raise FormInvalid({"supersedes": "Only the worker who added an entry can correct it."})
    if session.exec(select(LifeStoryEntry.id).where(LifeStoryEntry.supersedes == old_id)).first() is not None:
        raise FormInvalid({"supersedes": "This entry has already been corrected: correct the newer one."})
    held = {p.id: p for p in session.exec(select(Photo).where(Photo.record_id == old.id))}
    if set(keep_photo_ids) - set(held):
        raise FormInvalid({"photo": "A photo to keep is not one of this entry's photos."})
    return [open_photo(store, held[photo_id]) for photo_id in keep_photo_ids]


def _ids(value: Any) -> list[str]:
    """A list of ids as a form sends it: a list, or one string with the ids separated by commas."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _store_life_story(store: Store, session: Session, worker: Worker, child: Child, on: date, section: str,
                      body: LifeStoryBody, photos: list[bytes], device_id: str | None = None,
                      supersedes: str | None = None, key: str | None = None) -> LifeStoryEntry:
    # A life story is mostly about the time before the case opened: only a date before birth is refused.
    _check_child_dates(store, session, worker, child, "life_story", "on", on, "entry", {}, device_id,
                       confirmable=False)
    now = utcnow()
    entry = LifeStoryEntry(child_id=child.id, worker_id=worker.id, on=on, section=section,
                           status=RecordStatus.submitted.value, created_at=now, submitted_at=now,
                           supersedes=supersedes, submission_key=key)
    store.write(session, entry, body, actor=worker, device_id=device_id, action="submit")
    for image in photos:
        photo = Photo(record_id=entry.id, child_id=child.id, mime="image/jpeg", created_at=now)
        store.write(session, photo, actor=worker, device_id=device_id, action="create", blob=image)
    # The entry typed is in the book now: its draft goes in the same transaction, so it is not offered twice.
    discard_in(session, worker, child.id, LIFE_STORY_DRAFT_KIND)
    return entry


def submit_life_story_from_draft(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                                 idempotency_key: str, *, photos: list[bytes] | None = None,
                                 today: date | None = None, device_id: str | None = None) -> LifeStoryEntry:
    """Stores a life-story entry written offline, with the photos kept on the phone, once per key.

    The same checks as the screen, and each photo prepared as the screen prepares it; FormInvalid (nothing
    stored) says what to fix, the photos' problem under "photo". The entry (carrying the key) and its photos
    are written in one transaction, so a retry with a used key (this one, or the screen's submission key of
    the same form) returns the entry stored the first time and adds no photo.
    """
    existing = already_made(store, worker, idempotency_key.strip(), "life_story")
    if existing is not None:
        return existing
    photos = photos or []
    # A correction begun on the screen (the entry it replaces, the photos of it that stay) and finished offline.
    corrects, keep = str(fields.get("corrects") or "").strip(), _ids(fields.get("keep"))
    problems: dict[str, str] = {}
    try:
        on, section, body = check_life_story(fields, len(keep) + len(photos), today)
    except FormInvalid as e:
        problems.update(e.problems)
    prepared: list[bytes] = []
    if "photo" not in problems:  # too many photos is said already: not worth preparing them
        try:
            prepared = prepare_draft_photos(photos)
        except FormInvalid as e:
            problems.update(e.problems)
    if problems:
        raise FormInvalid(problems)

    def store_it(session: Session, child: Child) -> LifeStoryEntry:
        kept = _photos_kept_from(store, session, worker, child, corrects, keep) if corrects else []
        return _store_life_story(store, session, worker, child, on, section, body, kept + prepared, device_id,
                                 supersedes=corrects or None, key=idempotency_key.strip())

    return make_once(store, worker, child_id, idempotency_key, "life_story", store_it, device_id=device_id)


@dataclass
class LifeStoryItem:
    id: str
    on: date
    section: str
    title: str
    text: str
    photo_ids: list[str]
    worker_first_name: str
    worker_id: str = ""  # who added it: only they may correct it
    corrects: bool = False  # it replaces an earlier entry


@dataclass
class LifeStorySection:
    code: str
    title: str
    entries: list[LifeStoryItem] = field(default_factory=list)


def _life_story(store: Store, session: Session, child: Child) -> list[LifeStorySection]:
    """The book's chapters in order, each with its current entries oldest first (a story reads forwards)."""
    rows = list(session.exec(select(LifeStoryEntry).where(
        LifeStoryEntry.child_id == child.id, LifeStoryEntry.status != RecordStatus.draft.value)
        .order_by(col(LifeStoryEntry.on), col(LifeStoryEntry.created_at))))
    replaced = {r.supersedes for r in rows if r.supersedes}
    photos: dict[str, list[str]] = {}
    for photo in session.exec(select(Photo).where(Photo.child_id == child.id).order_by(col(Photo.created_at))):
        photos.setdefault(photo.record_id, []).append(photo.id)
    names = _workers(session, {r.worker_id for r in rows})
    sections = {code: LifeStorySection(code, title) for code, title in LIFE_STORY_SECTIONS.items()}
    for row in rows:
        if row.id in replaced:
            continue
        body: LifeStoryBody = store.opened(row).body
        author = names.get(row.worker_id)
        sections.setdefault(row.section, LifeStorySection(row.section, row.section.replace("_", " ").capitalize()))
        sections[row.section].entries.append(LifeStoryItem(
            id=row.id, on=row.on, section=row.section, title=body.title, text=body.text,
            photo_ids=photos.get(row.id, []), worker_first_name=first_name(author.display_name) if author else "",
            worker_id=row.worker_id, corrects=bool(row.supersedes)))
    return list(sections.values())


def life_story_for_child(store: Store, worker: Worker, child_id: str) -> tuple[ChildHeading, list[LifeStorySection]]:
    """The child's life-story book as the screen shows it. Reading it is audited."""
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        _read(session, worker, child, "life_story")
        return _heading(store, child), _life_story(store, session, child)


@dataclass
class LifeStoryBook:
    """What the printed book holds: nothing but the child's first name, the chapters and their photos."""

    first_name: str
    made_with: list[str]  # the first names of the workers who wrote entries
    sections: list[LifeStorySection]
    photos: dict[str, bytes]


def life_story_book(store: Store, worker: Worker, child_id: str) -> LifeStoryBook:
    """Everything the child's book needs, opened, for a worker who may see the child. Audited as an export."""
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        audit.append(session, "export", "life_story", child.id, worker_id=worker.id, child_id=child.id,
                     detail="life_story_book")
        heading = _heading(store, child)
        sections = _life_story(store, session, child)
        wanted = {pid for s in sections for e in s.entries for pid in e.photo_ids}
        photos = {p.id: open_photo(store, p) for p in session.exec(select(Photo).where(col(Photo.id).in_(wanted)))}
    made_with = sorted({e.worker_first_name for s in sections for e in s.entries if e.worker_first_name})
    return LifeStoryBook(heading.first_name, made_with, sections, photos)


# ============================================================ care plans and actions


def blank_plan_form(today: date | None = None) -> dict[str, str]:
    return {"kind": "", "start": (today or today_in_england()).isoformat(), "summary": ""}


def blank_action_form() -> dict[str, str]:
    return {"plan_id": "", "description": "", "owner": "", "due": "", KEY_FIELD: new_key()}


@dataclass
class ActionView:
    id: str
    plan_id: str
    description: str
    owner: str
    due: date | None
    status: str
    status_words: str
    outcome: str
    completed_on: date | None
    overdue: bool


@dataclass
class PlanView:
    id: str
    kind: str
    kind_words: str
    start: date
    ended: date | None
    summary: str
    actions: list[ActionView]


def is_overdue(action: CarePlanAction, today: date) -> bool:
    return action.status in OPEN_STATUSES and action.due is not None and action.due < today


def care_plans_for_child(store: Store, worker: Worker, child_id: str,
                         today: date | None = None) -> tuple[ChildHeading, list[PlanView]]:
    """The child's plans, current first, each with its actions: overdue first, then open by due date."""
    today = today or today_in_england()
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        _read(session, worker, child, "care_plan")
        plans = list(session.exec(select(CarePlan).where(CarePlan.child_id == child.id)
                                  .order_by(col(CarePlan.start).desc())))
        actions = list(session.exec(select(CarePlanAction).where(CarePlanAction.child_id == child.id)))
        views = []
        for plan in sorted(plans, key=lambda p: p.ended is not None):
            mine = []
            for action in (a for a in actions if a.plan_id == plan.id):
                body: CarePlanActionBody = store.opened(action).body
                mine.append(ActionView(
                    id=action.id, plan_id=plan.id, description=body.description, owner=body.owner, due=action.due,
                    status=action.status, status_words=ACTION_STATUS_WORDS.get(action.status, action.status),
                    outcome=body.outcome, completed_on=action.completed_on, overdue=is_overdue(action, today)))
            mine.sort(key=lambda a: (not a.overdue, a.status not in OPEN_STATUSES, a.due or date.max))
            views.append(PlanView(id=plan.id, kind=plan.kind, kind_words=PLAN_KINDS.get(plan.kind, plan.kind),
                                  start=plan.start, ended=plan.ended, summary=store.opened(plan).body.summary,
                                  actions=mine))
        return _heading(store, child), views


def add_plan(store: Store, worker: Worker, child_id: str, fields: dict[str, Any], *,
             today: date | None = None) -> CarePlan:
    """Starts a plan for the child. Raises FormInvalid saying what to fix."""
    today = today or today_in_england()
    problems: dict[str, str] = {}
    kind = _text(fields, "kind")
    if kind not in PLAN_KINDS:
        problems["kind"] = "Choose the kind of plan (care plan, child in need plan, PEP...)."
    start = _past_date(fields, "start", today, "plan's start", problems)
    if problems:
        raise FormInvalid(problems)
    assert start is not None
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        plan = CarePlan(child_id=child.id, kind=kind, start=start)
        store.write(session, plan, CarePlanBody(summary=_text(fields, "summary")), actor=worker, action="create")
        return plan


def add_action(store: Store, worker: Worker, child_id: str, fields: dict[str, Any]) -> CarePlanAction:
    """Adds an action to one of the child's plans, once per submission key when the form carries one (a second
    tap returns the action the first one added). Raises FormInvalid saying what to fix."""
    key = key_of(fields)
    existing = already_made(store, worker, key, "care_plan_action") if key else None
    if existing is not None:
        return existing
    problems: dict[str, str] = {}
    if not _text(fields, "plan_id"):
        problems["plan_id"] = "Choose the plan this action belongs to."
    if not _text(fields, "description"):
        problems["description"] = "Say what needs to be done."
    if not _text(fields, "owner"):
        problems["owner"] = "Say who will do it (a person or a role, like \"Carer\")."
    due: date | None = None
    if _text(fields, "due"):
        try:
            due = date.fromisoformat(_text(fields, "due"))
        except ValueError:
            problems["due"] = "Give the due date as a date, or leave it blank."
    if problems:
        raise FormInvalid(problems)

    def make(session: Session, child: Child) -> CarePlanAction:
        plan = session.get(CarePlan, _text(fields, "plan_id"))
        if policy.why_not_link_action(child.id, plan):
            raise FormInvalid({"plan_id": "That plan could not be found for this child. Choose another."})
        assert plan is not None
        _check_child_dates(store, session, worker, child, "care_plan_action", "due", due, "action's due", fields)
        action = CarePlanAction(plan_id=plan.id, child_id=child.id, due=due, status="open",
                                submission_key=key or None)
        store.write(session, action, CarePlanActionBody(description=_text(fields, "description"),
                                                        owner=_text(fields, "owner")),
                    actor=worker, action="create")
        return action

    if key:
        return make_once(store, worker, child_id, key, "care_plan_action", make)
    with store.session() as session:
        return make(session, store.child_for(session, worker, child_id))


def _action_for(store: Store, session: Session, worker: Worker, child_id: str, action_id: str) -> CarePlanAction:
    child = store.child_for(session, worker, child_id)
    action = session.get(CarePlanAction, action_id)
    if action is None or action.child_id != child.id:
        raise NotAllowed("That action could not be found for this child.", kind="care_plan_action",
                         record_id=action_id, worker_id=worker.id, child_id=child.id)
    return action


def set_action_status(store: Store, worker: Worker, child_id: str, action_id: str, status: str) -> CarePlanAction:
    """Moves an action to open, in progress or cancelled. "Done" needs an outcome: see `complete_action`."""
    if status not in ACTION_STATUSES:
        raise FormInvalid({"status": "Choose a status: open, in progress, done or cancelled."})
    if status == "done":
        raise FormInvalid({"status": "To mark an action done, complete it and say what the outcome was."})
    with store.session() as session:
        action = _action_for(store, session, worker, child_id, action_id)
        if action.status == status:
            return action
        changed = ["status"]
        action.status = status
        if action.completed_on is not None:
            action.completed_on = None  # reopened: it is no longer complete
            changed.append("completed_on")
        # The body is re-sealed unchanged so the change carries it; only the named fields' clocks move.
        store.write(session, action, store.opened(action).body, actor=worker, action="update", changed=changed)
        return action


def complete_action(store: Store, worker: Worker, child_id: str, action_id: str, outcome: str, *,
                    today: date | None = None) -> CarePlanAction:
    """Marks an action done today with its outcome. Raises FormInvalid without an outcome."""
    outcome = (outcome or "").strip()
    if not outcome:
        raise FormInvalid({"outcome": "Say what the outcome was before marking the action done."})
    with store.session() as session:
        action = _action_for(store, session, worker, child_id, action_id)
        body: CarePlanActionBody = store.opened(action).body
        body.outcome = outcome
        action.status = "done"
        action.completed_on = today or today_in_england()
        store.write(session, action, body, actor=worker, action="update",
                    changed=["status", "completed_on", "body.outcome"])
        return action

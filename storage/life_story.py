"""Life-story entries and their photos, and the book they make (printed by storage/life_story_book.py).

The entry's form is defined once, in storage/forms/life_story.py. A form being typed is kept as a sealed draft (storage/drafts.save_draft, kind LIFE_STORY_DRAFT_KIND), deleted
when the entry it becomes is stored. An entry is immutable once saved: a correction is a new entry whose
`supersedes` names the old one, keeping such of the old one's photos as the worker chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from storage import audit
from storage.child_forms import (
    ChildHeading,
    FormInvalid,
    _check_child_dates,
    _heading,
    _read,
    _text,
    _workers,
    first_name,
)
from storage.drafts import discard_in
from storage.forms.life_story import LIFE_STORY
from storage.models import (
    LIFE_STORY_SECTIONS,
    Child,
    LifeStoryBody,
    LifeStoryEntry,
    Photo,
    RecordStatus,
    Worker,
    utcnow,
)
from storage.photos import PHOTOS_PER_ENTRY, open_photo, prepare_draft_photos
from storage.store import Store
from storage.submissions import already_made, key_of, make_once
from storage.timescales.calendar import today_in_england

# The kinds of their drafts (storage/drafts.save_draft): one draft per worker, child and kind.
LIFE_STORY_DRAFT_KIND = "life_story"


def blank_life_story_form(today: date | None = None) -> dict[str, str]:
    return LIFE_STORY.blank({"on": (today or today_in_england()).isoformat()})


def check_life_story(fields: dict[str, Any], photos: int, today: date | None = None) -> tuple[date, str, LifeStoryBody]:
    """Checks a life-story entry (with `photos` photos attached); raises FormInvalid saying what to fix."""
    today = today or today_in_england()
    problems = LIFE_STORY.problems(fields, today=today)
    if not _text(fields, "text") and photos == 0:
        problems["text"] = LIFE_STORY.field("text").message
    if photos > PHOTOS_PER_ENTRY:
        problems["photo"] = f"An entry can hold up to {PHOTOS_PER_ENTRY} photos. Remove some, or add another entry."
    if problems:
        raise FormInvalid(problems)
    return (date.fromisoformat(_text(fields, "on")), _text(fields, "section"),
            LifeStoryBody(**LIFE_STORY.body_values(fields, LifeStoryBody)))


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
        # Imported here: the child's voice reads the book's shapes from this module.
        from storage.child_voice import own_words_chapter

        own_words = own_words_chapter(store, session, child.id)
        if own_words is not None:
            sections.append(own_words)
        wanted = {pid for s in sections for e in s.entries for pid in e.photo_ids}
        photos = {p.id: open_photo(store, p) for p in session.exec(select(Photo).where(col(Photo.id).in_(wanted)))}
    made_with = sorted({e.worker_first_name for s in sections for e in s.entries if e.worker_first_name})
    return LifeStoryBook(heading.first_name, made_with, sections, photos)

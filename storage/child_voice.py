"""The child's own voice: statements a child makes in child mode, and "I don't feel safe".

A statement (`ChildStatement`) is the child's answers, each optional: how they feel at home, at school and
about contact on a five-point picture scale, the Three Houses (good things, worries, hopes and dreams) and what
they want their worker, their IRO or the judge to know. It is sealed like every record, stored once per
submission key (storage/submissions.py), and stays the child's words: the worker's acknowledgement and
response are added beside them, never in place of them. The language the child chose is kept on the child.

"I don't feel safe" raises a `SafeguardingFlag` at once, whatever else the child does: in the same
transaction a push is queued for the child's worker, the worker whose phone it is and their managers (no
name on the lock screen: the child's initials only, as for due alerts), and the flag stays on the caseload
and the team dashboard until a manager records what was done. Every step is audited.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from storage import audit
from storage.child_forms import FormInvalid, _read, _text, _workers, child_session, first_name
from storage.child_view import TimelineItem
from storage.forms.visit import TOOK_PART, TOOK_PART_CODE
from storage.life_story import LifeStoryItem, LifeStorySection
from storage.models import (
    Category,
    Child,
    ChildBody,
    ChildStatement,
    ChildStatementBody,
    ManagedTeam,
    Photo,
    PushDelivery,
    RecordStatus,
    Review,
    Role,
    SafeguardingFlag,
    SafeguardingFlagBody,
    Visit,
    Worker,
    utcnow,
)
from storage.photos import prepare_photo
from storage.push_delivery import DELIVERY_KIND, subscriptions_by_worker
from storage.sealing import SealError
from storage.sign_in import SignInRefused, sign_in
from storage.store import NotAllowed, Store, age_on, check_password, hash_password
from storage.submissions import KEY_FIELD, key_of, make_once, new_key
from storage.timescales.calendar import LONDON, today_in_england

FEELING_TOPICS = ("home", "school", "contact")
FEELING_SCALE = range(1, 6)  # 1 very sad .. 5 very happy
HOUSES = ("good_things", "worries", "hopes")  # the Three Houses, each in words and, if the child likes, a drawing
WORD_FIELDS = (*HOUSES, "tell_worker", "tell_iro", "tell_judge")
MAX_WORDS = 4000
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
UNSAFE_FIELD = "unsafe"


def blank_statement_form(language: str = "en") -> dict[str, str]:
    """A new statement: nothing answered yet, in the child's language, with its submission key."""
    return {**{f"feeling_{topic}": "" for topic in FEELING_TOPICS}, **{name: "" for name in WORD_FIELDS},
            "language": language, UNSAFE_FIELD: "", KEY_FIELD: new_key()}


def check_language(language: str) -> str:
    if not LANGUAGE_CODE.match(language or ""):
        raise FormInvalid({"language": "Choose a language from the list."})
    return language


def check_statement(fields: dict[str, Any]) -> tuple[ChildStatementBody, str, bool]:
    """The statement's body, language and whether the child said they do not feel safe; FormInvalid when a
    worker's phone sent something a child's screen cannot (a scale outside 1-5, words far too long)."""
    problems: dict[str, str] = {}
    feelings: dict[str, int] = {}
    for topic in FEELING_TOPICS:
        raw = _text(fields, f"feeling_{topic}")
        if not raw:
            continue
        if not raw.isdigit() or int(raw) not in FEELING_SCALE:
            problems[f"feeling_{topic}"] = "Choose one of the five faces, or skip it."
        else:
            feelings[topic] = int(raw)
    words = {name: _text(fields, name) for name in WORD_FIELDS}
    for name, text in words.items():
        if len(text) > MAX_WORDS:
            problems[name] = f"That is more than {MAX_WORDS} characters: write less, or say the rest to your worker."
    language = _text(fields, "language") or "en"
    if not LANGUAGE_CODE.match(language):
        problems["language"] = "Choose a language from the list."
    if problems:
        raise FormInvalid(problems)
    unsafe = _text(fields, UNSAFE_FIELD).lower() in ("1", "true", "yes", "on")
    return ChildStatementBody(feelings=feelings, **words), language, unsafe


def _keep_language(store: Store, session: Session, worker: Worker, child: Child, language: str) -> None:
    if child.voice_language != language:
        child.voice_language = language
        store.write(session, child, actor=worker, changed=["voice_language"], action="update")


def set_language(store: Store, worker: Worker, child_id: str, language: str) -> None:
    """Keeps the language the child chose on the child's record (audited)."""
    check_language(language)
    with child_session(store, worker, child_id) as (session, child):
        _keep_language(store, session, worker, child, language)


def submit_statement(store: Store, worker: Worker, child_id: str, fields: dict[str, Any], *,
                     drawings: dict[str, bytes] | None = None, device_id: str | None = None) -> ChildStatement:
    """Stores the child's statement once per submission key, sealed; keeps their language on the child.

    `drawings` are photos of the child's Three Houses drawings (house -> a photo as `photos.prepare_photo`
    makes it), sealed as photos of the statement.

    FormInvalid (nothing stored) for answers a child's screen cannot give; NotAllowed (audited) for a child
    the worker may not see or a key another worker used. Sent again, it returns the statement stored first.
    """
    body, language, unsafe = check_statement(fields)
    key = key_of(fields) or new_key()
    unknown = set(drawings or {}) - set(HOUSES)
    if unknown:
        raise FormInvalid({"drawings": "A drawing belongs to one of the Three Houses."})

    def make(session: Session, child: Child) -> ChildStatement:
        now = utcnow()
        statement = ChildStatement(child_id=child.id, worker_id=worker.id, made_at=now, language=language,
                                   unsafe=unsafe, submission_key=key)
        photos = {house: Photo(record_id=statement.id, child_id=child.id, mime="image/jpeg", created_at=now)
                  for house in drawings or {}}
        body.drawings = {house: photo.id for house, photo in photos.items()}
        store.write(session, statement, body, actor=worker, device_id=device_id, action="create")
        for house, photo in photos.items():
            store.write(session, photo, actor=worker, device_id=device_id, action="create",
                        blob=(drawings or {})[house])
        _keep_language(store, session, worker, child, language)
        return statement

    return make_once(store, worker, child_id, key, "child_statement", make, device_id=device_id)


def submit_statement_from_draft(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                                idempotency_key: str, *, photos: list[bytes] | None = None,
                                device_id: str | None = None) -> ChildStatement:
    """A statement the child made with no signal (pwa/static/seen-child-offline.js), come home: the same checks
    and storing as the screen's `submit_statement`, under the key made when child mode opened. The photos of the
    drawings come in the order `fields["drawing_houses"]` names their houses; each is prepared as the screen
    prepares it. FormInvalid (nothing stored) when a house is named twice, unknown, or a photo is missing."""
    houses = [str(h) for h in fields.get("drawing_houses") or []]
    photos = photos or []
    if len(houses) != len(photos) or len(set(houses)) != len(houses) or set(houses) - set(HOUSES):
        raise FormInvalid({"drawings": "A drawing belongs to one of the Three Houses, one photo each."})
    drawings = {house: prepare_photo(photo) for house, photo in zip(houses, photos, strict=True)}
    words = {k: v for k, v in fields.items() if k != "drawing_houses"}
    return submit_statement(store, worker, child_id, {**words, KEY_FIELD: idempotency_key}, drawings=drawings,
                            device_id=device_id)


def _statement_for(store: Store, session: Session, worker: Worker,
                   statement_id: str) -> tuple[ChildStatement, ChildStatementBody]:
    """A statement and its opened body, for a worker who may see the child (NotAllowed otherwise)."""
    statement = session.get(ChildStatement, statement_id)
    if statement is None:
        raise NotAllowed("That statement could not be found.", kind="child_statement", record_id=statement_id,
                         worker_id=worker.id)
    store.child_for(session, worker, statement.child_id)
    return statement, store.opened(statement).body


def acknowledge_statement(store: Store, worker: Worker, statement_id: str, response: str) -> ChildStatement:
    """The worker's acknowledgement and response, kept beside the child's words (audited)."""
    response = response.strip()
    if not response:
        raise FormInvalid({"response": "Write what you will do about what the child said, or how you answered."})
    with store.session() as session:
        statement, body = _statement_for(store, session, worker, statement_id)
        statement.status = "acknowledged"
        statement.acknowledged_at = utcnow()
        statement.acknowledged_by = worker.id
        store.write(session, statement, body.model_copy(update={"response": response}), actor=worker,
                    action="acknowledge")
        return statement


def put_in_book(store: Store, worker: Worker, statement_id: str) -> ChildStatement:
    """The child agreed to put their statement in their life-story book: the worker records it (audited), and the
    book prints their words and drawings, never that they said they did not feel safe."""
    with store.session() as session:
        statement, body = _statement_for(store, session, worker, statement_id)
        if not body.in_book:
            store.write(session, statement, body.model_copy(update={"in_book": True}), actor=worker,
                        action="in_book")
        return statement


def own_words_chapter(store: Store, session: Session, child_id: str) -> LifeStorySection | None:
    """The life-story book's chapter of the child's own statements they agreed to put in it, oldest first (the
    caller has checked and audited the read)."""
    agreed = [s for s in reversed(statements_in(store, session, child_id)) if s.in_book]
    if not agreed:
        return None
    return LifeStorySection("own_words", "In my own words", [
        LifeStoryItem(s.id, s.made_at.astimezone(LONDON).date(), "own_words", "What I said",
                      statement_words(replace(s, unsafe=False)), list(s.drawings.values()), "")
        for s in agreed])


@dataclass
class StatementView:
    id: str
    made_at: datetime
    language: str
    unsafe: bool
    feelings: dict[str, int]
    words: dict[str, str]  # WORD_FIELDS answered, in order
    drawings: dict[str, str]  # house -> the photo of the child's drawing
    response: str
    acknowledged_by: str  # first name, "" while not acknowledged
    acknowledged_at: datetime | None
    in_book: bool = False  # the child agreed to put it in their life-story book


def _view(store: Store, row: ChildStatement, names: dict[str, Worker]) -> StatementView:
    body: ChildStatementBody = store.opened(row).body
    who = names.get(row.acknowledged_by or "")
    return StatementView(row.id, row.made_at, row.language, row.unsafe, dict(body.feelings),
                         {name: getattr(body, name) for name in WORD_FIELDS if getattr(body, name)},
                         dict(body.drawings),
                         body.response, first_name(who.display_name) if who else "", row.acknowledged_at,
                         body.in_book)


def statements_in(store: Store, session: Session, child_id: str) -> list[StatementView]:
    """The child's statements, newest first, opened (the caller has checked and audited the read); one that does
    not open (changed outside Seen) is left out."""
    rows = list(session.exec(select(ChildStatement).where(ChildStatement.child_id == child_id)
                             .order_by(col(ChildStatement.made_at).desc())))
    names = _workers(session, {r.acknowledged_by for r in rows if r.acknowledged_by})
    views = []
    for row in rows:
        try:
            views.append(_view(store, row, names))
        except SealError:  # changed outside Seen: left out, and audited, as the child page leaves such records out
            audit.append(session, "unreadable", "child_statement", row.id, child_id=child_id,
                         detail="its sealed body does not belong with its record as stored")
    return views


def statements_for_child(store: Store, worker: Worker, child_id: str) -> list[StatementView]:
    """The child's own statements, newest first. Reading them is audited."""
    with child_session(store, worker, child_id) as (session, child):
        _read(session, worker, child, "child_statement")
        return statements_in(store, session, child.id)


# ---------------------------------------------------------------- "I don't feel safe"


def _managers_of(session: Session, child: Child, workers: list[Worker]) -> set[str]:
    """The managers of the child's team and of the workers named."""
    ids = set(session.exec(select(ManagedTeam.manager_id).where(ManagedTeam.team_id == child.team_id)))
    ids |= set(session.exec(select(Worker.id).where(Worker.team_id == child.team_id,
                                                    Worker.role == Role.manager.value)))
    ids |= {w.manager_id for w in workers if w.manager_id}
    return ids


def flag_payload(flag: SafeguardingFlag, initials: str) -> dict[str, Any]:
    """What the phones receive: the child's initials only, never a name (it shows on a lock screen)."""
    tag = base64.urlsafe_b64encode(hashlib.sha256(f"flag|{flag.id}".encode()).digest()).decode()[:32]
    return {"title": f"A child does not feel safe — {initials}",
            "body": "Said in child mode just now. Tap to open; a manager records what was done.",
            "url": f"/child/{flag.child_id}", "tag": tag, "child": flag.child_id, "clock": "safeguarding",
            "due": flag.raised_at.date().isoformat(), "stage": "safeguarding"}


def _queue_flag_push(store: Store, session: Session, flag: SafeguardingFlag, child: Child, holder: Worker) -> list[str]:
    allocated = session.get(Worker, child.worker_id) if child.worker_id else None
    people = [w for w in (allocated, holder) if w is not None]
    recipients = {w.id for w in people} | _managers_of(session, child, people)
    active = {w.id for w in session.exec(select(Worker).where(col(Worker.id).in_(recipients),
                                                              col(Worker.active).is_(True)))}
    devices = subscriptions_by_worker(session)
    body: ChildBody = store.opened(child).body
    payload = flag_payload(flag, body.initials)
    queued = []
    for worker_id in sorted(active):
        for sub in devices.get(worker_id, []):
            delivery = PushDelivery(subscription_id=sub.id, worker_id=worker_id, topic=payload["tag"],
                                    created_at=flag.raised_at, next_attempt_at=flag.raised_at)
            delivery.sealed = store.seal_payload(DELIVERY_KIND, delivery.id, payload)
            session.add(delivery)
            queued.append(delivery.id)
    audit.append(session, "push", "safeguarding_flag", flag.id, worker_id=holder.id, child_id=child.id,
                 detail=f"queued for {len(queued)} device(s) of {len(active)} worker(s)")
    return queued


@dataclass
class Raised:
    flag: SafeguardingFlag
    deliveries: list[str]  # the pushes queued, for delivery at once (empty when the key had raised it already)


def raise_unsafe(store: Store, worker: Worker, child_id: str, key: str, *, device_id: str | None = None) -> Raised:
    """The child said "I don't feel safe": a flag on the child, and a push queued to the child's worker, the
    phone's worker and their managers, in one transaction. Once per key (a second tap raises nothing new)."""
    queued: list[str] = []

    def make(session: Session, child: Child) -> SafeguardingFlag:
        flag = SafeguardingFlag(child_id=child.id, worker_id=worker.id, raised_at=utcnow(), submission_key=key)
        store.write(session, flag, SafeguardingFlagBody(), actor=worker, device_id=device_id, action="raise",
                    detail="the child said they do not feel safe")
        queued.extend(_queue_flag_push(store, session, flag, child, worker))
        return flag

    return Raised(make_once(store, worker, child_id, key, "safeguarding_flag", make, device_id=device_id), queued)


def raise_unsafe_from_draft(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                           idempotency_key: str, *, device_id: str | None = None) -> Raised:
    """"I don't feel safe" said with no signal, come home: `raise_unsafe` under the key made when child mode
    opened (the screen's key too), so a tap heard online and again offline raises one flag and one push."""
    return raise_unsafe(store, worker, child_id, idempotency_key, device_id=device_id)


@dataclass
class FlagView:
    id: str
    child_id: str
    child_name: str
    raised_at: datetime


def open_flags(store: Store, worker: Worker) -> list[FlagView]:
    """The flags not yet acted on for the children this worker may see (their caseload, their teams')."""
    with store.session() as session:
        children = {c.id: c for c in store.visible_children(session, worker)}
        if not children:
            return []
        rows = session.exec(select(SafeguardingFlag).where(col(SafeguardingFlag.cleared_at).is_(None),
                                                           col(SafeguardingFlag.child_id).in_(list(children)))
                            .order_by(col(SafeguardingFlag.raised_at)))
        return [FlagView(row.id, row.child_id, store.opened(children[row.child_id]).body.name, row.raised_at)
                for row in rows]


def clear_flag(store: Store, manager: Worker, flag_id: str, action_taken: str) -> SafeguardingFlag:
    """A manager records what was done: the flag leaves the caseload and dashboard. Only a manager of the
    child's team may (refusals audited); what was done must be written."""
    with store.session() as session:
        flag = session.get(SafeguardingFlag, flag_id)
        if flag is None:
            raise NotAllowed("That safeguarding flag could not be found.", kind="safeguarding_flag",
                             record_id=flag_id, worker_id=manager.id)
        store.require_manager_of(session, manager, flag.child_id, kind="safeguarding_flag", record_id=flag.id)
        if flag.cleared_at is not None:
            return flag
        if not action_taken.strip():
            raise FormInvalid({"action_taken": "Write what was done to keep the child safe before you clear the "
                                               "flag."})
        flag.cleared_at = utcnow()
        flag.cleared_by = manager.id
        store.write(session, flag, SafeguardingFlagBody(action_taken=action_taken.strip()), actor=manager,
                    action="clear")
        return flag


# ---------------------------------------------------------------- handing the phone to the child and back

PIN_TRIES = 5  # wrong PINs before only the worker's password will do
PIN_PATTERN = re.compile(r"^\d{4,8}$")
OFFLINE_PIN_ITERATIONS = 600_000  # PBKDF2-SHA256, as the browser's WebCrypto checks it with no signal


def offline_pin_check(pin: str) -> dict[str, Any] | None:
    """What the phone keeps (sealed) to check the worker's PIN with no signal: a salted PBKDF2-SHA256 of it,
    never the PIN. None without a PIN (then, with no signal, nobody takes the phone back until it returns)."""
    if not pin:
        return None
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, OFFLINE_PIN_ITERATIONS)
    return {"salt": base64.b64encode(salt).decode(), "iterations": OFFLINE_PIN_ITERATIONS,
            "check": base64.b64encode(digest).decode(), "tries": PIN_TRIES}


def hand_over(store: Store, worker: Worker, child_id: str, language: str, pin: str = "") -> str:
    """The worker hands the phone to the child (audited); keeps the child's language. Returns the PIN's hash
    ("" for none: then only the worker's password takes the phone back)."""
    check_language(language)
    if pin and not PIN_PATTERN.match(pin):
        raise FormInvalid({"pin": "A PIN is 4 to 8 digits. Leave it empty to use your password instead."})
    with child_session(store, worker, child_id) as (session, child):
        _keep_language(store, session, worker, child, language)
        audit.append(session, "hand_over", "child_mode", child.id, worker_id=worker.id, child_id=child.id,
                     detail=f"language {language}" + (", with a PIN" if pin else ""))
    return hash_password(pin) if pin else ""


@dataclass
class Leaving:
    """Whether the worker took the phone back, and if not, why (in words the worker reads)."""

    ok: bool
    why: str = ""
    pin_tries: int = 0


def take_back(store: Store, worker: Worker, child_id: str, secret: str, pin_hash: str, pin_tries: int,
              address: str | None = None) -> Leaving:
    """The worker takes the phone back with their PIN (all digits, while tries remain) or their password (the
    sign-in's throttle and audit apply). Blocks for the hash: call it off the event loop. Every try audited."""
    secret = secret.strip()
    ok, why = False, "That is not your worker's PIN or password, so the phone stays on this screen."
    if pin_hash and secret.isdigit() and pin_tries < PIN_TRIES:
        ok = check_password(secret, pin_hash)
        pin_tries += 0 if ok else 1
        if not ok and pin_tries >= PIN_TRIES:
            why = "Too many wrong PINs: the worker's password is needed now."
    elif secret:
        try:
            ok = sign_in(store, worker.username, secret, address).id == worker.id
        except SignInRefused as refused:
            why = str(refused) if "Wait" in str(refused) else why
    with store.session() as session:
        audit.append(session, "leave" if ok else "denied", "child_mode", child_id, worker_id=worker.id,
                     child_id=child_id, detail="the worker took the phone back" if ok else
                     "leaving child mode without the worker's PIN or password")
    return Leaving(ok, "" if ok else why, pin_tries)




@dataclass
class Participation:
    """What the next looked-after review's participation code can be taken from: how the child took part in their
    visits, and their statements for their IRO, since the last review. `code` is the code it points to ("" if it
    cannot be said); the IRO records the code, as attendance at the review decides it."""

    code: str
    why: str


def participation(age: int | None, statements: list[StatementView], since: date | None,
                  visits: Sequence[tuple[date, str]] = ()) -> Participation:
    """`visits`: (day, how the child took part: a key of storage/forms/visit.TOOK_PART) for the visits since the
    last review, newest first."""
    if age is not None and age < 4:
        return Participation("PN0", "The child is under 4.")
    for_iro = [s for s in statements if s.words.get("tell_iro")
               and (since is None or s.made_at.astimezone(LONDON).date() > since)]
    took_part = next(((day, way) for day, way in visits if way in TOOK_PART_CODE), None)
    at_visit = ""
    if took_part:
        day, way = took_part
        at_visit = (f"At their visit on {day:%-d %B %Y}: {TOOK_PART[way][0].lower()}{TOOK_PART[way][1:]}. If they "
                    f"take part in the review the same way, {TOOK_PART_CODE[way]}.")
    if for_iro:
        return Participation("PN6", f"The child told their IRO what they want them to know in child mode on "
                                    f"{for_iro[0].made_at.astimezone(LONDON):%-d %B %Y}: if they do not attend, their "
                                    "views reach the review that way (PN6). "
                                    + (at_visit or "If they attend, PN1 to PN4 apply."))
    if took_part:
        return Participation(TOOK_PART_CODE[took_part[1]], at_visit + " If they do not attend: PN5 if they brief an "
                             "advocate, PN6 if their views reach it another way, else PN7.")
    return Participation("", "Not known yet: no visit since the last review says how the child took part, and the "
                             "child has not told their IRO anything in child mode.")


@dataclass
class ChildVoice:
    """What the child page shows of the child's own voice: their statements, the flags open, and their language."""

    language: str
    statements: list[StatementView]
    flags: list[FlagView]
    manages: bool  # the worker manages the child's team: they may clear a flag
    participation: Participation | None = None  # for a child in care: their next review's participation


def voice_for_child(store: Store, worker: Worker, child_id: str) -> ChildVoice:
    """The child's statements (the read audited) and open flags, for the child page."""
    with child_session(store, worker, child_id) as (session, child):
        _read(session, worker, child, "child_statement")
        name = store.opened(child).body.name
        flags = [FlagView(row.id, child.id, name, row.raised_at) for row in session.exec(
            select(SafeguardingFlag).where(SafeguardingFlag.child_id == child.id,
                                           col(SafeguardingFlag.cleared_at).is_(None)))]
        manages = child.team_id in store.managed_team_ids(session, worker)
        statements = statements_in(store, session, child.id)
        taking_part = None
        if child.category == Category.cic.value:
            last = session.exec(select(col(Review.held_on)).where(Review.child_id == child.id, Review.kind == "cic_review",
                                                             col(Review.held_on).is_not(None))
                                .order_by(col(Review.held_on).desc())).first()
            born = store.opened(child).body.date_of_birth
            taking_part = participation(age_on(born, today_in_england()), statements, last,
                                        _took_part(store, session, child.id, last))
        return ChildVoice(child.voice_language or "en", statements, flags, manages, taking_part)


def _took_part(store: Store, session: Session, child_id: str, since: date | None) -> list[tuple[date, str]]:
    """How the child took part in each visit since `since` (newest first): the visit form's `took_part` answer."""
    visits = list(session.exec(select(Visit).where(Visit.child_id == child_id,
                                                   Visit.status != RecordStatus.draft.value)
                               .order_by(col(Visit.visited_at).desc())))
    corrected = {v.supersedes for v in visits if v.supersedes}
    found: list[tuple[date, str]] = []
    for visit in visits:
        day = visit.visited_at.astimezone(LONDON).date()
        if since is not None and day <= since:
            break
        if visit.id in corrected:
            continue
        try:
            way = store.opened(visit).body.answers.get("took_part", "")
        except SealError:
            continue  # changed outside Seen: the child page names it
        if way:
            found.append((day, way))
    return found


FEELING_WORDS = {1: "very sad", 2: "sad", 3: "OK", 4: "happy", 5: "very happy"}
WORD_TITLES = {"good_things": "House of good things", "worries": "House of worries",
               "hopes": "House of hopes and dreams", "tell_worker": "For their social worker",
               "tell_iro": "For their IRO", "tell_judge": "For the judge"}


def statement_words(statement: StatementView) -> str:
    """The child's statement as one passage in their own words, each answer under its question."""
    parts = [f"At {topic}: {FEELING_WORDS[value]} ({value} of 5)" for topic, value in statement.feelings.items()]
    parts += [f"{WORD_TITLES[name]}: {words}" for name, words in statement.words.items()]
    parts += [f"{WORD_TITLES[house]}: a drawing" for house in statement.drawings if house not in statement.words]
    if statement.unsafe:
        parts.insert(0, "I don't feel safe.")
    return "\n".join(parts)


def timeline_items(statements: list[StatementView]) -> list[TimelineItem]:
    """The child's statements as timeline entries: their words shown in the child's style, the worker's
    response apart from them."""
    return [TimelineItem(kind="child_statement", record_id=s.id, on=s.made_at.astimezone(LONDON).date(),
                         title="The child's own statement (child mode)", at=s.made_at,
                         child_words=statement_words(s) or "They chose not to answer.",
                         lines=[(f"{s.acknowledged_by}'s response", s.response)] if s.response else [])
            for s in statements]


def with_statements(timeline: list[TimelineItem], statements: list[StatementView]) -> list[TimelineItem]:
    """The timeline (newest first) with the child's statements in it, by day."""
    return sorted(timeline + timeline_items(statements), key=lambda item: item.on, reverse=True)


def statements_on(store: Store, worker: Worker, child_id: str, day: date) -> list[StatementView]:
    """The child's statements made on `day` (England's date): shown beside that day's visit at sign-off."""
    return [s for s in statements_for_child(store, worker, child_id) if s.made_at.astimezone(LONDON).date() == day]

"""The domain model: SQLModel tables and the sealed bodies that go with them.

Each table keeps in clear only what queries and timescales need (ids, dates, category, status).
Names, addresses and words live in the record's sealed body, described by the `...Body` model
beside the table; `storage.store` is the one place that seals and opens them.

Where the Standard Safeguarding Dataset (ssd-data-model) has a field for the same thing, `SSD_FIELDS`
maps our column to its name so a council can report from Seen as from its case management system.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

from pydantic import BaseModel
from sqlalchemy import Column, LargeBinary, Table
from sqlmodel import AutoString, Field, SQLModel

from storage.sealing import random_bytes


def new_id() -> str:
    """A random UUID (version 4) as text: `str(uuid.uuid4())`, made without the UUID object (1.6 us instead of
    5.8: a sync push makes one for each of its audit events)."""
    value = int.from_bytes(random_bytes(16), "big") & _UUID4_CLEAR | _UUID4_SET  # RFC 4122's variant, version 4
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# The bits uuid.UUID(version=4) clears and sets: the variant (10xx in the clock sequence's top bits) and the
# version (0100 in the time's top four bits).
_UUID4_CLEAR = ~(0xC000 << 48 | 0xF000 << 64)
_UUID4_SET = 0x8000 << 48 | 4 << 76


def utcnow() -> datetime:
    return datetime.now(UTC)


def sealed_column() -> Any:
    return Field(default=b"", sa_column=Column(LargeBinary, nullable=False))


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core table, for plain inserts and selects that skip the ORM's per-row work."""
    return model.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models, but does not declare it


class Record(Protocol):
    """Any sealed record read generically, its model known only at run time (one of KIND_OF's): SQLModel
    declares no columns, so sealing, writing and sync read a row's id and sealed body through this."""

    id: str
    sealed: bytes


class ChildPart(Record, Protocol):
    """A record about one child (a placement, visit, photo, plan, action, review or draft)."""

    child_id: str


def record(row: SQLModel) -> Record:
    """A row of one of KIND_OF's models, read as a `Record`."""
    return cast(Record, row)


def child_part(row: SQLModel) -> ChildPart:
    """A row of one of the models about a child, read as a `ChildPart`."""
    return cast(ChildPart, row)


class Category(StrEnum):
    cin = "cin"
    cp = "cp"
    cic = "cic"
    case_managed = "case_managed"
    care_leaver = "care_leaver"


CATEGORY_LABELS = {
    "cin": "Child in need",
    "cp": "Child protection",
    "cic": "Child in care",
    "case_managed": "Case managed (disabled children)",
    "care_leaver": "Care leaver",
}


class Role(StrEnum):
    practitioner = "practitioner"
    manager = "manager"
    admin = "admin"


class RecordStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    returned = "returned"
    signed_off = "signed_off"


# SSDA903 placement type codes (DfE, children looked after return).
PLACEMENT_TYPES: dict[str, str] = {
    "A3": "Placed for adoption with consent, with current foster carer",
    "A4": "Placed for adoption with consent, not with current foster carer",
    "A5": "Placed for adoption with placement order, with current foster carer",
    "A6": "Placed for adoption with placement order, not with current foster carer",
    "H5": "Semi-independent living accommodation not subject to children's homes regulations",
    "K1": "Secure children's home",
    "K2": "Children's home",
    "P1": "Placed with own parent(s) or person with parental responsibility",
    "P2": "Independent living, e.g. flat or lodgings",
    "P3": "Residential employment",
    "R1": "Residential care home",
    "R2": "NHS / health trust or other establishment providing medical or nursing care",
    "R3": "Family centre or mother and baby unit",
    "R5": "Young offender institution or prison",
    "S1": "All residential schools, except where dual-registered as a school and children's home",
    "T0": "Temporary placement",
    "U1": "Foster placement with relative or friend, long term fostering",
    "U2": "Foster placement with relative or friend who is also an approved adopter (FFA/concurrent)",
    "U3": "Foster placement with relative or friend, not long term or FFA/concurrent",
    "U4": "Foster placement with other foster carer, long term fostering",
    "U5": "Foster placement with other foster carer who is also an approved adopter (FFA/concurrent)",
    "U6": "Foster placement with other foster carer, not long term or FFA/concurrent",
    "Z1": "Other placements",
}

# The SSDA903 codes of foster placements: reg 28(3A)'s fewer visits apply only to a long-term one.
FOSTER_PLACEMENTS = frozenset({"U1", "U2", "U3", "U4", "U5", "U6"})

# SSDA903 legal status codes.
LEGAL_STATUSES: dict[str, str] = {
    "C1": "Interim care order",
    "C2": "Full care order",
    "D1": "Freeing order granted",
    "E1": "Placement order granted",
    "V2": "Single period of accommodation under section 20",
    "V3": "Accommodated under an agreed series of short-term breaks, single placement",
    "V4": "Accommodated under an agreed series of short-term breaks, multiple placements",
    "L1": "Under police protection and in local authority accommodation",
    "L2": "Emergency protection order",
    "L3": "Under child assessment order and in local authority accommodation",
    "J1": "Remanded to local authority accommodation or youth detention accommodation",
    "J2": "Placed in local authority accommodation under PACE",
    "J3": "Sentenced to a youth rehabilitation order with residence or intensive fostering requirement",
    "S17": "Child in need (section 17, Children Act 1989)",
    "S47": "Child protection plan (section 47, Children Act 1989)",
}

PLACEMENT_ARRANGEMENTS = (
    "standard",
    "parent_pending_assessment",
    "interim_care_order_with_parent",
    "connected_person_temporary",
    "care_order_with_parent",
)

VISIT_LOCATIONS = {
    "placement": "Placement",
    "school": "School",
    "family_home": "Family home",
    "contact_centre": "Contact centre",
    "other": "Somewhere else",
}

# Care Planning, Placement and Case Review (England) Regulations 2010, reg 29(2)(b):
# the child may be seen alone unless one of these applies.
NOT_ALONE_REASONS = {
    "refused": "The child, of sufficient age and understanding, refused",
    "inappropriate": "Inappropriate given the child's age and understanding",
    "unable": "The worker was unable to see the child alone",
}

WISHES_METHODS = {
    "conversation": "Conversation",
    "three_houses": "Three houses",
    "drawing": "Drawing",
    "app": "An app",
    "other": "Other",
}

LIFE_STORY_SECTIONS = {
    "born": "Where I was born",
    "family": "My family",
    "why_care": "Why I came into care",
    "lived": "Where I have lived",
    "achievements": "My achievements",
}

PLAN_KINDS = {
    "care_plan": "Care plan",
    "cin_plan": "Child in need plan",
    "cp_plan": "Child protection plan",
    "pep": "Personal education plan",
    "health_plan": "Health plan",
}

ACTION_STATUSES = ("open", "in_progress", "done", "cancelled")

REVIEW_KINDS = {
    "cic_review": "Looked-after review",
    "initial_conference": "Initial child protection conference",
    "cp_review": "Review child protection conference",
    "cin_review": "Child in need review",
    "case_managed_review": "Six-monthly case-managed review",
    "health_assessment": "Health assessment",
    "pep_review": "PEP review",
    "pathway_plan_review": "Pathway plan review",
    "initial_health_assessment": "Initial health assessment",
    "review_health_assessment": "Review health assessment",
}

# Our column -> the Standard Safeguarding Dataset's field of the same meaning.
SSD_FIELDS: dict[str, str] = {
    "visit.visited_at": "visit_date",
    "visit.seen": "visit_seen",
    "visit.seen_alone": "visit_seen_alone",
    "visit.bedroom_seen": "visit_bedroom",
    "visit.worker_id": "visit_worker_id",
    "review.scheduled_for": "review_due_date",
    "review.held_on": "review_actual_date",
    "child.looked_after_since": "legal_status_start_date",
    "child.strategy_discussion": "s47e_strategy_discussion_date",
    "child.initial_conference": "icpc_date",
    "placement.placement_type": "clap_cla_placement_type",
    "placement.start": "clap_cla_placement_start_date",
    "placement.end": "clap_cla_placement_end_date",
    "placement.distance_km": "clap_cla_placement_distance",
    "placement.local_authority": "clap_cla_placement_la",
    "child.referral": "cine_referral_date",
    "child.assessment_completed": "cina_assessment_auth_date",
}


# ---------------------------------------------------------------- people


class Team(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    name: str
    local_authority: str = "Seenshire"


class Worker(SQLModel, table=True):
    """A practitioner, manager or admin. Managers manage the teams in `ManagedTeam`."""

    id: str = Field(default_factory=new_id, primary_key=True)
    username: str = Field(index=True, unique=True)
    display_name: str
    role: str = Role.practitioner.value
    team_id: str | None = Field(default=None, foreign_key="team.id", index=True)
    manager_id: str | None = Field(default=None, index=True)
    password_hash: str = ""
    active: bool = True


class ManagedTeam(SQLModel, table=True):
    manager_id: str = Field(foreign_key="worker.id", primary_key=True)
    team_id: str = Field(foreign_key="team.id", primary_key=True)


class Device(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    name: str = ""
    token_hash: str = Field(default="", index=True)
    enrolled_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime | None = None
    revoked_at: datetime | None = None
    # What the device said it still holds at its last sync (storage/sync/behind.py).
    last_sync_at: datetime | None = None
    waiting: int = 0
    set_aside: int = 0
    conflicts: int = 0
    waiting_since: datetime | None = None  # the write time of its oldest change not yet on the server


class EnrolmentCode(SQLModel, table=True):
    code_hash: str = Field(primary_key=True)
    worker_id: str = Field(foreign_key="worker.id")
    issued_by: str
    issued_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


# ---------------------------------------------------------------- children


class MutableRecord(SQLModel):
    """Fields every mutable, syncable record carries: revision and a change stamp (storage/hlc.py) per field."""

    revision: int = 0
    field_clocks: str = "{}"  # JSON: field name -> change stamp of its last write (the column's first name)
    updated_at: datetime = Field(default_factory=utcnow)


class ChildBody(BaseModel):
    first_name: str
    last_name: str
    preferred_name: str = ""
    date_of_birth: date | None = None
    gender: str = ""
    ethnicity: str = ""
    first_language: str = ""
    religion: str = ""
    disability: str = ""
    home_address: str = ""
    home_postcode: str = ""
    external_ref: str = ""  # the council's case management system id
    photo: str = ""  # data URL, optional

    @property
    def name(self) -> str:
        first = self.preferred_name or self.first_name
        return f"{first} {self.last_name}".strip()

    @property
    def initials(self) -> str:
        return ".".join(p[0].upper() for p in (self.first_name, self.last_name) if p) + "."


class Child(MutableRecord, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    category: str = Field(index=True)
    legal_status: str = ""
    team_id: str = Field(foreign_key="team.id", index=True)
    worker_id: str | None = Field(default=None, foreign_key="worker.id", index=True)
    # Dates that start the clocks (see storage/timescales/).
    looked_after_since: date | None = None
    strategy_discussion: date | None = None
    initial_conference: date | None = None
    cin_plan_start: date | None = None
    case_managed_since: date | None = None
    referral: date | None = None
    assessment_completed: date | None = None
    care_leaver_since: date | None = None  # became a relevant or former relevant child
    plan_visit_every: str = ""  # how often the child's plan says they are seen ("5 working days"); "" if unset
    birth_year: int | None = None  # clear for age bands in reports; the full date is sealed
    ref_hash: str = Field(default="", index=True)  # keyed hash of the council's id, for re-imports
    closed_on: date | None = None
    voice_language: str = ""  # the language the child chose in child mode ("en", "cy"...; storage/child_voice.py)
    sealed: bytes = sealed_column()


class PlacementBody(BaseModel):
    provider: str = ""
    carer: str = ""
    address: str = ""
    postcode: str = ""
    town: str = ""


class Placement(MutableRecord, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    placement_type: str  # SSDA903 code
    start: date
    end: date | None = None
    long_term: bool = False  # intended to last until the child is 18
    arrangement: str = "standard"
    child_agreed_less_frequent: bool = False  # reg 28(3A)
    local_authority: str = ""
    out_of_area: bool = False
    distance_km: float | None = None
    # SSDA903 (storage/returns/): PLACE_PROVIDER (PR0-PR5), the provider's Ofsted URN, REASON_PLACE_CHANGE.
    provider_code: str = ""
    urn: str = ""
    change_reason: str = ""
    # The placement form's submission key (storage/submissions.py): a placement started twice is held once.
    submission_key: str | None = Field(default=None, unique=True, index=True)
    sealed: bytes = sealed_column()


# ---------------------------------------------------------------- work with the child


class SafetyScore(BaseModel):
    who: str
    score: int


class SafetyGoal(BaseModel):
    """A danger statement paired with its safety goal, and each person's score (0-10) at this visit."""

    pair_id: str  # carried forward from visit to visit, so the pair's scores can be followed over time
    danger: str  # "Worried that ..."
    goal: str  # "What needs to happen ..."
    scores: dict[str, int] = {}  # who (storage/forms/visit.py SAFETY_GOAL_SCORERS) -> score; not asked: absent


class VisitBody(BaseModel):
    location_detail: str = ""
    present: str = ""
    observations: str = ""  # fact
    analysis: str = ""  # opinion
    child_words: str = ""  # the child's wishes and feelings, in their own words
    child_words_not_recorded_reason: str = ""
    worries: str = ""
    working_well: str = ""
    needs_to_happen: str = ""
    safety_scale: list[SafetyScore] = []  # one overall scale (the visits before safety goals have only this)
    safety_goals: list[SafetyGoal] = []
    actions: list[str] = []
    manager_note: str = ""
    return_reason: str = ""
    # Answers to fields added to the visit's form (storage/forms/visit.py) that have no field here: sealed
    # with the rest, so a new question needs no new column.
    answers: dict[str, str] = {}


class Visit(SQLModel, table=True):
    """A statutory visit. Immutable once submitted: a correction is a new visit that supersedes it."""

    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    visited_at: datetime
    location: str = "placement"
    seen: bool = True
    seen_alone: bool | None = None
    not_alone_reason: str | None = None
    bedroom_seen: bool | None = None
    status: str = Field(default=RecordStatus.draft.value, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    written_up_at: datetime | None = None  # when submitted: late write-ups are visible
    submitted_at: datetime | None = None
    signed_off_by: str | None = None
    signed_off_at: datetime | None = None
    supersedes: str | None = None
    # The key the form was opened with (storage/submissions.py): one record a key, however often it is sent.
    submission_key: str | None = Field(default=None, unique=True, index=True)
    sealed: bytes = sealed_column()


class WishesBody(BaseModel):
    child_words: str = ""
    reflection: str = ""
    shared_with: str = ""


class DirectWork(SQLModel):
    """The clear columns every piece of direct work with a child has (wishes and feelings, a life-story entry)."""

    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    worker_id: str = Field(foreign_key="worker.id")
    on: date
    status: str = RecordStatus.draft.value
    created_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None
    supersedes: str | None = None
    # The key the form was opened with (storage/submissions.py): one record a key, however often it is sent.
    submission_key: str | None = Field(default=None, unique=True, index=True)


class WishesAndFeelings(DirectWork, table=True):
    __tablename__ = "wishes_and_feelings"
    method: str = "conversation"
    sealed: bytes = sealed_column()


class LifeStoryBody(BaseModel):
    title: str = ""
    text: str = ""


class LifeStoryEntry(DirectWork, table=True):
    __tablename__ = "life_story_entry"
    section: str = "family"
    sealed: bytes = sealed_column()


class Photo(SQLModel, table=True):
    """A photo attached to a record; the image bytes are sealed like any body."""

    id: str = Field(default_factory=new_id, primary_key=True)
    record_id: str = Field(index=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    mime: str = "image/jpeg"
    created_at: datetime = Field(default_factory=utcnow)
    sealed: bytes = sealed_column()


class CarePlanBody(BaseModel):
    summary: str = ""


class CarePlan(MutableRecord, table=True):
    __tablename__ = "care_plan"
    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    kind: str = "care_plan"
    start: date
    ended: date | None = None
    sealed: bytes = sealed_column()


class CarePlanActionBody(BaseModel):
    description: str = ""
    owner: str = ""
    outcome: str = ""


class CarePlanAction(MutableRecord, table=True):
    __tablename__ = "care_plan_action"
    id: str = Field(default_factory=new_id, primary_key=True)
    plan_id: str = Field(foreign_key="care_plan.id", index=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    due: date | None = None
    status: str = "open"
    completed_on: date | None = None
    from_visit: str | None = None  # the visit whose "actions arising" created it
    # The key the form was opened with (storage/submissions.py): one record a key, however often it is sent.
    submission_key: str | None = Field(default=None, unique=True, index=True)
    sealed: bytes = sealed_column()


class ReviewBody(BaseModel):
    notes: str = ""


class Review(MutableRecord, table=True):
    """Reviews and meetings: looked-after reviews, conferences, CiN reviews, health assessments, PEPs."""

    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    kind: str
    scheduled_for: date | None = None
    held_on: date | None = None
    # A health assessment's clock needs only whether the child was under five that day (the date of birth is
    # sealed): set when the assessment is recorded.
    under_five: bool | None = None
    # For the statutory returns (storage/returns/): SSDA903's participation code (PN0-PN7), whether it was
    # cancelled; a CP review's plan, whether it was quorate and whether the plan continues.
    participation: str | None = None
    cancelled: bool = False
    plan_id: str | None = None
    quorate: bool | None = None
    plan_continues: bool | None = None
    # The review form's submission key (storage/submissions.py): a review sent twice is held once.
    submission_key: str | None = Field(default=None, unique=True, index=True)
    sealed: bytes = sealed_column()


class MissingEpisodeBody(BaseModel):
    child_said: str = ""  # what the child said at the return home interview


class MissingEpisode(MutableRecord, table=True):
    """A time the child was missing, and the return home interview offered and held after it."""

    __tablename__ = "missing_episode"
    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    start: date
    end: date | None = None  # None while the child is still missing
    interview_offered_on: date | None = None
    interview_held_on: date | None = None
    absent: bool = False  # SSDA903 MISSING "A": away from placement without authorisation, not missing ("M")
    interview_accepted: bool | None = None
    sealed: bytes = sealed_column()


class CarePeriod(MutableRecord, table=True):
    """A period of care (an SSDA903 / SSD CLA episode): when the child became looked after, on what legal
    status, and when and why it ended. Codes and dates only, nothing sealed. CP and CIN plans are `CarePlan`s."""

    __tablename__ = "care_period"
    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    start: date
    end: date | None = None
    legal_status: str = ""  # SSDA903 LS
    primary_need: str = ""  # SSDA903 CIN: the category of need, N1-N8
    start_reason: str = "S"  # SSDA903 RNE: S started to be looked after
    end_reason: str = ""  # SSDA903 REC, when it ended


class ChildStatementBody(BaseModel):
    """What the child said in child mode (storage/child_voice.py), in their words, and the worker's response."""

    feelings: dict[str, int] = {}  # home, school, contact -> 1 (very sad) .. 5 (very happy); unanswered left out
    good_things: str = ""  # Three Houses: the house of good things
    worries: str = ""  # the house of worries
    hopes: str = ""  # the house of hopes and dreams
    tell_worker: str = ""
    tell_iro: str = ""
    tell_judge: str = ""
    drawings: dict[str, str] = {}  # a Three Houses answer -> the photo (`Photo.id`) of the child's drawing of it
    response: str = ""  # the worker's acknowledgement and response, written after
    in_book: bool = False  # the child agreed to put it in their life-story book (the worker records it)


class ChildStatement(SQLModel, table=True):
    """The child's own statement, made on the worker's phone in child mode: set apart from the worker's voice."""

    __tablename__ = "child_statement"
    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    worker_id: str = Field(foreign_key="worker.id")  # whose phone the child used
    made_at: datetime = Field(default_factory=utcnow)
    language: str = "en"
    unsafe: bool = False  # the child said "I don't feel safe"
    status: str = "submitted"  # submitted, acknowledged
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    submission_key: str | None = Field(default=None, unique=True, index=True)
    sealed: bytes = sealed_column()


class SafeguardingFlagBody(BaseModel):
    action_taken: str = ""  # what the manager recorded was done


class SafeguardingFlag(SQLModel, table=True):
    """A child said "I don't feel safe": shown on the caseload and dashboard until a manager records what was done."""

    __tablename__ = "safeguarding_flag"
    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    worker_id: str = Field(foreign_key="worker.id")  # whose phone the child used
    raised_at: datetime = Field(default_factory=utcnow)
    cleared_at: datetime | None = Field(default=None, index=True)
    cleared_by: str | None = None
    submission_key: str | None = Field(default=None, unique=True, index=True)
    sealed: bytes = sealed_column()

# ---------------------------------------------------------------- audit, keys, sync


class AuditEvent(SQLModel, table=True):
    """Append-only and hash-chained: each event carries the hash of the one before."""

    __tablename__ = "audit_event"
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(default_factory=new_id, unique=True)
    at: datetime = Field(default_factory=utcnow)
    worker_id: str | None = None
    device_id: str | None = None
    action: str  # read, create, update, submit, sign_off, return, allocate, denied, ...
    kind: str  # the record's kind
    record_id: str
    child_id: str | None = Field(default=None, index=True)
    detail: str = ""  # never identifying: ids and field names only
    prev_hash: str
    hash: str
    # On the server, for an event a device sent from its own chain: "<device id>:<the node's event id>",
    # unique, so an upload sent twice is held once. None for an event written here.
    origin: str | None = Field(default=None, unique=True, index=True)
    # On the server, for an event a device sent: when the server received it. An event received well after
    # it says it happened (`BACKDATED_AFTER`) is shown as backdated: the server cannot vouch for its time.
    received_at: datetime | None = None

    @property
    def backdated(self) -> bool:
        if self.received_at is None:
            return False
        return _as_utc(self.received_at) - _as_utc(self.at) > BACKDATED_AFTER


BACKDATED_AFTER = timedelta(minutes=5)


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for aware ones written: they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class SignInThrottle(SQLModel, table=True):
    """Failed web sign-ins, per account and per client address (keyed hashes, never the name or address)."""

    __tablename__ = "sign_in_throttle"
    key: str = Field(primary_key=True)
    failures: int = 0
    last_failure_at: datetime
    locked_until: datetime | None = None


class KeyringEntry(SQLModel, table=True):
    """The store's wrapped data key (and other small secrets kept sealed, like the VAPID key)."""

    __tablename__ = "keyring"
    name: str = Field(primary_key=True)
    value: str


class Outbox(SQLModel, table=True):
    """Local changes waiting to be pushed; written in the same transaction as the change."""

    seq: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(default_factory=new_id, unique=True)
    kind: str
    record_id: str
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    sealed: bytes = sealed_column()  # the change itself, sealed: it holds record content


class SyncState(SQLModel, table=True):
    __tablename__ = "sync_state"
    key: str = Field(primary_key=True)
    value: str


class Draft(SQLModel, table=True):
    """A form in progress (visit, wishes and feelings, life story), saved as the worker types."""

    id: str = Field(default_factory=new_id, primary_key=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    child_id: str = Field(foreign_key="child.id", index=True)
    kind: str  # visit, wishes_and_feelings, life_story
    idempotency_key: str | None = Field(default=None, unique=True)
    updated_at: datetime = Field(default_factory=utcnow)
    sealed: bytes = sealed_column()


class SubmissionReceipt(SQLModel, table=True):
    """A submission that changes a record rather than making one (a sign-off, an allocation): its key, so the
    same form sent twice is carried out once (storage/submissions.py)."""

    __tablename__ = "submission_receipt"
    key: str = Field(primary_key=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    kind: str  # sign_off, allocation
    record_id: str  # the visit signed off, the child allocated
    created_at: datetime = Field(default_factory=utcnow)


class PushSubscription(SQLModel, table=True):
    __tablename__ = "push_subscription"
    id: str = Field(default_factory=new_id, primary_key=True)
    worker_id: str = Field(foreign_key="worker.id", index=True)
    endpoint_hash: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    sealed: bytes = sealed_column()  # endpoint and keys


class SentAlert(SQLModel, table=True):
    """An alert already sent: child, clock, due date and stage, per worker. Never sent twice."""

    __tablename__ = "sent_alert"
    worker_id: str = Field(primary_key=True)
    child_id: str = Field(primary_key=True)
    clock: str = Field(primary_key=True)
    due: date = Field(primary_key=True)
    stage: str = Field(primary_key=True)
    sent_at: datetime = Field(default_factory=utcnow)


class PushDelivery(SQLModel, table=True):
    """One alert waiting for (or done with) one subscription: written with its SentAlert, in one transaction.

    An alert decided is never lost (it waits here until the push service takes it) and is marked delivered
    the moment the push service accepts it, so a crash can at worst repeat one message to one device.
    """

    __tablename__ = "push_delivery"
    id: str = Field(default_factory=new_id, primary_key=True)
    subscription_id: str = Field(index=True)
    worker_id: str = Field(index=True)
    topic: str = ""  # Web Push Topic: a repeat replaces an undelivered copy at the push service
    created_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    attempts: int = 0
    delivered_at: datetime | None = Field(default=None, index=True)
    given_up_at: datetime | None = None
    detail: str = ""  # the last failure, in words (status code, never content)
    sealed: bytes = sealed_column()  # the notification's payload


# Kinds, as bound into sealed bodies' associated data and used in audit and sync.
KIND_OF: dict[type[SQLModel], str] = {
    Child: "child",
    Placement: "placement",
    Visit: "visit",
    WishesAndFeelings: "wishes_and_feelings",
    LifeStoryEntry: "life_story",
    Photo: "photo",
    CarePlan: "care_plan",
    CarePlanAction: "care_plan_action",
    Review: "review",
    MissingEpisode: "missing_episode",
    Outbox: "outbox",
    Draft: "draft",
    PushSubscription: "push_subscription",
    ChildStatement: "child_statement",
    SafeguardingFlag: "safeguarding_flag",
}

BODY_OF: dict[type[SQLModel], type[BaseModel]] = {
    Child: ChildBody,
    Placement: PlacementBody,
    Visit: VisitBody,
    WishesAndFeelings: WishesBody,
    LifeStoryEntry: LifeStoryBody,
    CarePlan: CarePlanBody,
    CarePlanAction: CarePlanActionBody,
    Review: ReviewBody,
    MissingEpisode: MissingEpisodeBody,
    ChildStatement: ChildStatementBody,
    SafeguardingFlag: SafeguardingFlagBody,
}


# ---------------------------------------------------------------- sync (pwa/sync, storage/sync/)


class ChangeLog(SQLModel, table=True):
    """The server's record of every applied change, numbered in the order it was applied.

    Nodes pull by `seq`; `change_id` is unique, so a change pushed twice is held once.
    """

    __tablename__ = "change_log"
    seq: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(unique=True)
    batch_id: str = Field(default="", index=True)
    device_id: str | None = None  # None: written on the server itself (the hosted app)
    kind: str
    record_id: str = Field(index=True)
    child_id: str | None = Field(default=None, index=True)
    applied_at: datetime = Field(default_factory=utcnow)
    sealed: bytes = sealed_column()  # the change as applied, sealed with the server's key


class RecordStamp(SQLModel, table=True):
    """The change stamp (storage/hlc.py) of the last write to a record that carries no per-field stamps
    (visits, life story...). Its table and column keep their first names."""

    __tablename__ = "sync_clock"
    record_id: str = Field(primary_key=True)
    kind: str
    stamp: str = Field(sa_column=Column("clock", AutoString, nullable=False))


class Conflict(SQLModel, table=True):
    """A value that lost a concurrent edit: kept and shown, never dropped silently."""

    id: str = Field(primary_key=True)  # derived from record, field and the losing change stamp: logged once
    kind: str
    record_id: str = Field(index=True)
    child_id: str | None = Field(default=None, index=True)
    field: str
    # The change stamps (storage/hlc.py) of the two writes; under their first names, which sync sends.
    winner_clock: str
    loser_clock: str
    at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None
    sealed: bytes = sealed_column()  # {"winner": value, "loser": value}
    decided_by: str | None = None  # who decided which value stands (storage/sync/conflicts.py)
    kept: str = ""  # "winner" or "loser": the value the decision kept


class AllocationEnd(SQLModel, table=True):
    """A worker's allocation to a child ending (reallocated, or the case closed): edits their device wrote
    before it are still theirs (storage/sync/moved.py)."""

    __tablename__ = "allocation_end"
    id: str = Field(default_factory=new_id, primary_key=True)
    child_id: str = Field(index=True)
    worker_id: str = Field(index=True)
    reason: str  # "reallocated" or "closed"
    stamp: str = ""  # the change stamp (storage/hlc.py) of the write that ended it
    ended_at: datetime = Field(default_factory=utcnow)


class LateChange(SQLModel, table=True):
    """A device's change for a child who had left its worker: accepted as theirs, or held for a manager."""

    __tablename__ = "late_change"
    change_id: str = Field(primary_key=True)
    child_id: str = Field(index=True)
    worker_id: str
    device_id: str
    kind: str
    record_id: str
    outcome: str  # "accepted" (written while allocated) or "held" (written after)
    reason: str
    arrived_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision: str = ""  # for a held change: "accepted" or "discarded"; for an accepted one: "seen"
    sealed: bytes = sealed_column()  # a held change itself, sealed


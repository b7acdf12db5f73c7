"""The audit trail as a manager reads it: plain sentences, who did what to whose record, when, on which device.

"Chloe Brown signed off Ben's visit of 3 Mar 2027 for J.S., 4 Mar 2027 10:12": names, not ids, read from
the events as stored (storage/audit.py keeps them as they are: ids and field names, hash-chained). A
manager reads the trail of every child in the teams they manage, filtered by child, by the worker who
acted, and by a range of days; an administrator reads one child's trail at a time, without the child's
name (an admin reads no case records unless they also manage the child's team). Anyone else is refused,
and the refusal audited, as for every other record. Each reading is itself audited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from storage import audit
from storage.models import AuditEvent, Child, Device, LifeStoryEntry, Role, Visit, WishesAndFeelings, Worker
from storage.store import Store
from storage.timescales.calendar import LONDON, show_date

# At most this many sentences on one page, newest first: a filter narrows the rest.
PAGE_SIZE = 300

VERBS = {
    "read": "read", "create": "created", "update": "changed", "submit": "submitted", "sign_off": "signed off",
    "return": "returned", "allocate": "moved", "revoke": "revoked", "resend": "sent again", "delete": "deleted",
    "denied": "was refused access to", "export": "exported",
    # The child's voice (storage/child_voice.py).
    "hand_over": "started", "leave": "ended", "raise": "raised", "push": "sent the alerts for",
    "clear": "recorded what was done about", "acknowledge": "responded to",
}
# What a record of each kind is called, after whose it is ("Ben's visit", "J.S.'s placement").
KIND_WORDS = {
    "child": "details", "placement": "placement", "visit": "visit", "wishes_and_feelings": "wishes and feelings work",
    "life_story": "life-story entry", "photo": "photo", "care_plan": "care plan", "care_plan_action":
    "care plan action", "review": "review", "missing_episode": "missing episode", "audit_trail": "audit trail",
    "child_mode": "child-mode session", "child_statement": "statement in the child's own words",
    "safeguarding_flag": "safeguarding flag (\"I don't feel safe\")",
}
# Records a worker writes and dates: whose they are, and the day they are of ("Ben's visit of 3 Mar 2027").
AUTHORED: dict[str, tuple[Any, str]] = {
    "visit": (Visit, "visited_at"), "wishes_and_feelings": (WishesAndFeelings, "on"),
    "life_story": (LifeStoryEntry, "on"),
}
# Field names as the trail stores them, in words; any other is shown with its underscores as spaces.
FIELD_WORDS = {"signed_off_at": "when it was signed off", "manager_note": "management oversight note",
               "worker_id": "allocated worker", "return_reason": "reason for returning it"}


@dataclass(frozen=True)
class TrailFilter:
    """What to show: one child, one worker's actions, the days from `since` to `until` (both included)."""

    child_id: str = ""
    worker_id: str = ""
    since: date | None = None
    until: date | None = None


@dataclass
class TrailLine:
    seq: int
    at: datetime
    sentence: str  # who did what to whose record, when
    notes: list[str] = field(default_factory=list)  # what changed, on which device, whether it came late


@dataclass
class ReadTrail:
    lines: list[TrailLine]
    children: dict[str, str]  # the children the reader may filter by: id -> name (none for an administrator)
    workers: dict[str, str]  # the workers to filter by (the reader's teams', and any who appear): id -> name
    child_name: str | None  # the filtered child's name, when the reader may see it
    more: bool  # more events matched than PAGE_SIZE


def initials(name: str) -> str:
    """'Jamie Smith' -> 'J.S.': the trail names a child the way a manager's notes do."""
    return "".join(f"{part[0].upper()}." for part in name.split() if part)


def _utc(moment: datetime) -> datetime:
    """Stored times are UTC; a database that keeps no zone gives them back naive."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(moment: datetime) -> str:
    local = _utc(moment).astimezone(LONDON)
    return f"{show_date(local.date())} {local:%H:%M}"


def first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


def field_words(detail: str) -> str:
    """'body.manager_note,signed_off_at' -> 'management oversight note, when it was signed off'."""
    names = [part.strip().removeprefix("body.") for part in detail.split(",") if part.strip()]
    return ", ".join(FIELD_WORDS.get(name, name.replace("_", " ")) for name in names)


def _day_bounds(filters: TrailFilter) -> tuple[datetime | None, datetime | None]:
    """The filter's days as instants: from the start of `since` to the end of `until`, in England."""

    def instant(day: date) -> datetime:
        return datetime.combine(day, time(), LONDON).astimezone(UTC)

    return (instant(filters.since) if filters.since else None,
            instant(filters.until + timedelta(days=1)) if filters.until else None)


def _readable_children(store: Store, session: Session, reader: Worker, filters: TrailFilter
                       ) -> tuple[list[str], bool]:
    """The children whose events the reader may read under these filters, and whether they may see names."""
    managed = store.managed_team_ids(session, reader)
    if filters.child_id:
        child = session.get(Child, filters.child_id)
        if child is not None and reader.active and child.team_id in managed:
            return [child.id], True
        if child is not None and reader.active and reader.role == Role.admin.value:
            return [child.id], False  # an administrator may see the trail, not the record
        store.require_manager_of(session, reader, filters.child_id, kind="audit_trail")  # refuses, audited
    store.require_role(session, reader, Role.manager.value, what="/audit")
    ids = session.exec(select(Child.id).where(col(Child.team_id).in_(sorted(managed)))).all()
    return list(ids), True


def read_trail(store: Store, reader: Worker, filters: TrailFilter = TrailFilter()) -> ReadTrail:
    """The trail in sentences, newest first, as the filters narrow it. Raises NotAllowed (audited) for a reader
    who manages no team, or a child outside the teams they manage (an administrator may read one child's)."""
    with store.session() as session:
        child_ids, named = _readable_children(store, session, reader, filters)
        query = select(AuditEvent).where(col(AuditEvent.child_id).in_(child_ids))
        if filters.worker_id:
            query = query.where(AuditEvent.worker_id == filters.worker_id)
        start, end = _day_bounds(filters)
        if start:
            query = query.where(col(AuditEvent.at) >= start)
        if end:
            query = query.where(col(AuditEvent.at) < end)
        events = list(session.exec(query.order_by(col(AuditEvent.seq).desc()).limit(PAGE_SIZE + 1)))
        more = len(events) > PAGE_SIZE
        events = events[:PAGE_SIZE]
        children = _child_names(store, session, child_ids) if named else {}
        words = _Words(session, events, children)
        lines = [words.line(event) for event in events]
        team = session.exec(select(Worker.id).where(col(Worker.team_id).in_(
            sorted(store.managed_team_ids(session, reader))))).all() if named else []
        workers = _worker_names(session, [e.worker_id for e in events] + [filters.worker_id, *team])
        audit.append(session, "read", "audit_trail", filters.child_id or "team", worker_id=reader.id,
                     child_id=filters.child_id or None, detail="" if not filters.worker_id else "one worker")
    return ReadTrail(lines=lines, children=children, workers=workers, more=more,
                     child_name=children.get(filters.child_id) if filters.child_id else None)


def _child_names(store: Store, session: Session, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.exec(select(Child).where(col(Child.id).in_(ids)))
    return dict(sorted(((row.id, store.opened(row).body.name) for row in rows), key=lambda pair: pair[1]))


def _worker_names(session: Session, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return {w.id: w.display_name for w in session.exec(select(Worker).where(col(Worker.id).in_(wanted)))}


class _Words:
    """Looks up, once for a page of events, the names the sentences need: workers, devices, records' authors."""

    def __init__(self, session: Session, events: list[AuditEvent], children: dict[str, str]) -> None:
        self.children = children
        authored: dict[str, tuple[str, date]] = {}
        for kind, (model, day) in AUTHORED.items():
            ids = sorted({e.record_id for e in events if e.kind == kind})
            if ids:
                for row in session.exec(select(model).where(col(model.id).in_(ids))):
                    moment = getattr(row, day)
                    authored[row.id] = (row.worker_id, _utc(moment).astimezone(LONDON).date()
                                        if isinstance(moment, datetime) else moment)
        self.authored = authored
        moved_to: list[str | None] = [e.detail.rsplit(" ", 1)[-1] for e in events if e.action == "allocate"]
        self.names = _worker_names(session, [e.worker_id for e in events]
                                   + [author for author, _ in authored.values()] + moved_to)
        device_ids = sorted({e.device_id for e in events if e.device_id and not e.device_id.startswith("web-")})
        self.devices = {d.id: d.name for d in session.exec(select(Device).where(col(Device.id).in_(device_ids)))
                        } if device_ids else {}

    def child(self, event: AuditEvent) -> str:
        name = self.children.get(event.child_id or "")
        return initials(name) if name else "the child"

    def record(self, event: AuditEvent, actor_id: str | None) -> str:
        """'Ben's visit of 3 Mar 2027 for J.S.', 'J.S.'s placement', 'their own life-story entry of ...'."""
        what = KIND_WORDS.get(event.kind, event.kind.replace("_", " "))
        child = self.child(event)
        if event.record_id in self.authored:
            author, day = self.authored[event.record_id]
            whose = "their" if author == actor_id else f"{first_name(self.names.get(author, 'a worker'))}'s"
            return f"{whose} {what} of {show_date(day)} for {child}"
        if event.kind in ("child", "placement", "audit_trail", "care_plan"):
            return f"{child}'s {what}" if child != "the child" else f"the child's {what}"
        return f"a {what} for {child}"

    def line(self, event: AuditEvent) -> TrailLine:
        actor = self.names.get(event.worker_id or "", "Seen itself" if not event.worker_id else "A former worker")
        verb = VERBS.get(event.action, event.action.replace("_", " "))
        obj = self.record(event, event.worker_id)
        if event.action == "allocate":
            moved_to = self.names.get(event.detail.rsplit(" ", 1)[-1])
            obj = f"{self.child(event)} to {moved_to}" if moved_to else f"{self.child(event)} to another worker"
        notes = []
        if event.action == "update" and event.detail:
            notes.append(f"Changed: {field_words(event.detail)}")
        elif event.action == "denied" and event.detail:
            notes.append(f"Why: {event.detail.replace('_', ' ')}")
        if event.device_id and event.device_id.startswith("web-"):
            notes.append("In the web app")
        elif event.device_id:
            notes.append(f"On {self.devices.get(event.device_id) or 'a device no longer enrolled'}")
        if event.backdated and event.received_at is not None:
            notes.append(f"The device sent it later, on {when(event.received_at)}: its time is the device's word")
        return TrailLine(event.seq or 0, event.at, f"{actor} {verb} {obj}, {when(event.at)}", notes)


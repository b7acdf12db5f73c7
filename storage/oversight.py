"""What a team manager sees and does: the team dashboard's figures, sign-off, returns and allocation.

Also the administrator's lists (workers, teams, devices; revoking a device). A child's audit trail is read by `storage.audit_trail`.
Every function checks the worker's role through the store, the one place that decides who may see what;
a refusal is audited, and that audit event is committed before the refusal is raised to the page.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlmodel import Session, col, select

from storage import audit, policy
from storage.caseload import CaseloadRow, caseload
from storage.cases import COUNTED_VISIT_STATUSES, cases_for, local_date
from storage.models import (
    CarePlanAction,
    Child,
    Device,
    Draft,
    ManagedTeam,
    RecordStatus,
    Role,
    Team,
    Visit,
    Worker,
    utcnow,
)
from storage.store import Opened, Store
from storage.submissions import decide_once
from storage.timescales import CaseError, RuleSet, add_months, clocks_for, is_late_write_up, load_rules
from storage.timescales.calendar import today_in_england

T = TypeVar("T")

VISIT_CLOCKS = {"cic": "cic_visit", "cp": "cp_visit", "cin": "cin_visit", "case_managed": "case_managed_visit",
                "care_leaver": "pa_visit"}
OPEN_ACTION_STATUSES = ("open", "in_progress")
LATE_WRITE_UP_WINDOW = timedelta(days=91)  # the dashboard counts late write-ups of the last 3 months
CHART_MONTHS = 12


class OversightError(ValueError):
    """Something a manager or admin asked for that cannot be done; the message says what to do instead."""


def _checked(store: Store, work: Callable[[Session], T]) -> T:
    """Runs `work` in one transaction (a refusal is audited by the session itself, see session_scope)."""
    with store.session() as session:
        return work(session)


def _names(session: Session, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return {w.id: w.display_name for w in session.exec(select(Worker).where(col(Worker.id).in_(wanted)))}


# ---------------------------------------------------------------- the team dashboard


@dataclass
class TeamRow:
    """One child on the dashboard: their caseload row and what a manager looks for beyond the clocks."""

    case: CaseloadRow
    worker_name: str
    not_seen_alone_last_two: bool
    late_write_ups: int
    overdue_actions: int

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["case"], name)


@dataclass(frozen=True)
class VisitTiming:
    """A visit where the child was seen: the month it fell in, and whether it was in timescale."""

    child_id: str
    month: date  # the first of the month
    in_timescale: bool


@dataclass
class Counts:
    children: int = 0
    overdue: int = 0  # clocks (visits, reviews, conferences) past their due date
    due_this_week: int = 0  # clocks due today or in the next six days
    not_seen_alone: int = 0  # children not seen alone at either of their last two visits
    late_write_ups: int = 0  # visits of the last 3 months written up late, or still not written up
    overdue_actions: int = 0  # care plan actions past due and not done
    cannot_work_out: int = 0  # children whose clocks cannot be worked out (a date their record lacks)


@dataclass
class Dashboard:
    on: date
    team_names: list[str]
    rows: list[TeamRow]
    workers: dict[str, str]  # worker id -> name: the practitioners a child can be moved to
    timings: list[VisitTiming] = field(default_factory=list)


def team_dashboard(store: Store, manager: Worker, on: date | None = None, rules: RuleSet | None = None
                   ) -> Dashboard:
    """Every child in the manager's team(s), worst clock first, with the figures the dashboard shows."""
    on = on or today_in_england()
    rules = rules or load_rules()

    def work(session: Session) -> tuple[list[str], list[Child], dict[str, str], dict[str, str], list[Visit],
                                       dict[str, int], list[VisitTiming]]:
        store.require_role(session, manager, Role.manager.value, what="/team")
        teams = store.managed_team_ids(session, manager)
        team_names = sorted(t.name for t in session.exec(select(Team).where(col(Team.id).in_(teams))))
        children = list(session.exec(select(Child).where(col(Child.team_id).in_(teams),
                                                         col(Child.closed_on).is_(None))))
        ids = [c.id for c in children]
        names = _names(session, [c.worker_id for c in children])
        workers = _team_workers(session, teams)
        visits = list(session.exec(select(Visit).where(col(Visit.child_id).in_(ids)).order_by(
            col(Visit.visited_at).desc()))) if ids else []
        overdue_actions: dict[str, int] = defaultdict(int)
        if ids:
            query = select(CarePlanAction.child_id).where(
                col(CarePlanAction.child_id).in_(ids), col(CarePlanAction.due) < on,
                col(CarePlanAction.status).in_(OPEN_ACTION_STATUSES))
            for child_id in session.exec(query):
                overdue_actions[child_id] += 1
        timings = _visit_timings(cases_for(session, children), on, rules)
        return team_names, children, names, workers, visits, overdue_actions, timings

    team_names, children, names, workers, visits, overdue_actions, timings = _checked(store, work)
    rows = caseload(store, manager, on, children=children)
    by_child: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:  # newest first
        by_child[visit.child_id].append(visit)
    since = on - LATE_WRITE_UP_WINDOW
    team_rows = []
    for row in rows:
        mine = by_child[row.child_id]
        counted = [v for v in mine if v.status in COUNTED_VISIT_STATUSES]
        last_two = counted[:2]
        team_rows.append(TeamRow(
            case=row,
            worker_name=names.get(row.worker_id or "", "Not allocated"),
            not_seen_alone_last_two=len(last_two) == 2 and not any(v.seen and v.seen_alone for v in last_two),
            late_write_ups=sum(1 for v in mine if local_date(v.visited_at) >= since and _late(v, on, rules)),
            overdue_actions=overdue_actions.get(row.child_id, 0),
        ))
    return Dashboard(on=on, team_names=team_names, rows=team_rows, workers=workers, timings=timings)


def _late(visit: Visit, on: date, rules: RuleSet) -> bool:
    """Written up late; or, still a draft, already past the day it should have been written up by."""
    visited = local_date(visit.visited_at)
    if visit.written_up_at is not None:
        return is_late_write_up(visited, local_date(visit.written_up_at), rules)
    return visit.status == RecordStatus.draft.value and is_late_write_up(visited, on, rules)


def _visit_timings(cases: list[Any], on: date, rules: RuleSet) -> list[VisitTiming]:
    """Each seen visit of the last 12 months, in timescale if it came on or before the day it was due.

    The day it was due is the visit clock as it stood on the visit's day, counting only the visits
    before it. Case-managed children have no statutory visit clock, so their visits are not timed.
    """
    first_month = add_months(on.replace(day=1), 1 - CHART_MONTHS)
    out = []
    for case in cases:
        clock_name = VISIT_CLOCKS.get(case.category)
        if clock_name is None:
            continue
        seen = [v for v in case.visits if v.seen]
        for visit in seen:
            if not first_month <= visit.date <= on:
                continue
            before = dataclasses.replace(case, visits=tuple(v for v in case.visits if v.date < visit.date))
            try:
                clocks = clocks_for(before, visit.date, rules)
            except CaseError:
                continue  # a record missing a date its clock needs is shown on the child, not charted
            clock = next((c for c in clocks if c.clock == clock_name), None)
            if clock is not None:
                out.append(VisitTiming(case.id, visit.date.replace(day=1), visit.date <= clock.due))
    return out


def filter_rows(rows: list[TeamRow], *, worker_id: str | None = None, category: str | None = None,
                out_of_area: bool = False) -> list[TeamRow]:
    """The dashboard's filters: one worker's children, one category, only those placed out of area."""
    return [r for r in rows
            if (not worker_id or r.worker_id == worker_id)
            and (not category or r.category == category)
            and (not out_of_area or r.out_of_area)]


def counts(rows: list[TeamRow], on: date) -> Counts:
    week_end = on + timedelta(days=6)
    result = Counts(children=len(rows))
    for row in rows:
        for clock in row.clocks:
            if clock.status == "overdue":
                result.overdue += 1
            elif clock.due <= week_end:
                result.due_this_week += 1
        result.cannot_work_out += bool(row.problem)
        result.not_seen_alone += row.not_seen_alone_last_two
        result.late_write_ups += row.late_write_ups
        result.overdue_actions += row.overdue_actions
    return result


@dataclass
class MonthlySeries:
    months: list[str]  # "Dec 2025", ... oldest first
    in_timescale: list[int]
    out_of_timescale: list[int]


def monthly_series(timings: list[VisitTiming], on: date, child_ids: set[str] | None = None) -> MonthlySeries:
    """Visits in and out of timescale per month over the last 12 months, for these children."""
    starts = [add_months(on.replace(day=1), n - CHART_MONTHS + 1) for n in range(CHART_MONTHS)]
    within = {m: [0, 0] for m in starts}
    for t in timings:
        if (child_ids is None or t.child_id in child_ids) and t.month in within:
            within[t.month][0 if t.in_timescale else 1] += 1
    return MonthlySeries(months=[f"{m:%b %Y}" for m in starts], in_timescale=[within[m][0] for m in starts],
                         out_of_timescale=[within[m][1] for m in starts])


# ---------------------------------------------------------------- allocation


def _team_workers(session: Session, teams: set[str]) -> dict[str, str]:
    if not teams:
        return {}
    query = select(Worker).where(col(Worker.team_id).in_(teams), Worker.role == Role.practitioner.value,
                                 col(Worker.active).is_(True)).order_by(col(Worker.display_name))
    return {w.id: w.display_name for w in session.exec(query)}


def allocate(store: Store, manager: Worker, child_id: str, worker_id: str, key: str = "") -> None:
    """Moves a child to another worker in the manager's team(s). From then the child is on the new
    worker's caseload (and synced to their devices) and no longer on the old worker's.

    With the form's submission `key`, carried out once per key: sent again, it changes nothing and says
    nothing (storage/submissions.py)."""

    def work(session: Session) -> None:
        store.require_role(session, manager, Role.manager.value, what="allocate")
        child = store.require_manager_of(session, manager, child_id)
        who = policy.actor(manager, store.managed_team_ids(session, manager))
        new = session.get(Worker, worker_id) if worker_id else None
        refusal = policy.why_not_allocate(who, child, new)
        if new is None or refusal:
            raise OversightError(refusal.message if refusal else "Choose a worker in a team you manage.")
        if child.worker_id == new.id:
            raise OversightError(f"This child is already allocated to {new.display_name}.")
        old = child.worker_id
        child.worker_id = new.id
        changed = ["worker_id"]
        if new.team_id and child.team_id != new.team_id:  # the policy allows only a worker in a managed team
            child.team_id = new.team_id
            changed.append("team_id")
        store.write(session, child, None, actor=manager, action="allocate", changed=changed,
                    detail=f"from {old or 'nobody'} to {new.id}")

    _once(store, manager, key, "allocation", child_id, work)


def _once(store: Store, manager: Worker, key: str, kind: str, record_id: str, work: Callable[[Session], None]
          ) -> None:
    """`work` in one transaction; with a submission key, once per key (a second tap changes nothing)."""
    if key:
        decide_once(store, manager, key, kind, record_id, work)
    else:
        _checked(store, work)


# Work a worker left unfinished, in words, by the kind of draft it is kept as (the screens' own drafts, and
# one sent from a phone's offline page that the app keeps until the worker finishes it).
UNFINISHED_KINDS = {"visit": "a visit record", "wishes_and_feelings": "wishes-and-feelings work",
                    "life_story": "a life-story entry", "offline_visit": "a visit record written offline",
                    "offline_wishes_and_feelings": "wishes-and-feelings work written offline",
                    "offline_life_story": "a life-story entry written offline"}


def unfinished_work(store: Store, manager: Worker, child_id: str) -> list[str]:
    """What the child's allocated worker has left unfinished for them, each as "a visit record (last saved
    21 Nov 2026)", newest first: asked before the child moves, because a draft stays its author's and its
    author can no longer open it once the child is on someone else's caseload. Managers of the child's team
    only; nothing of the drafts' contents is read."""

    def work(session: Session) -> list[str]:
        store.require_role(session, manager, Role.manager.value, what="allocate")
        child = store.require_manager_of(session, manager, child_id)
        if not child.worker_id:
            return []
        drafts = session.exec(select(Draft.kind, Draft.updated_at).where(
            Draft.child_id == child.id, Draft.worker_id == child.worker_id,
            col(Draft.kind).in_(list(UNFINISHED_KINDS))).order_by(col(Draft.updated_at).desc()))
        return [f"{UNFINISHED_KINDS[kind]} (last saved {local_date(at):%-d %b %Y})" for kind, at in drafts]

    return _checked(store, work)


# ---------------------------------------------------------------- sign-off


@dataclass
class QueueItem:
    visit_id: str
    child_id: str
    child_name: str
    worker_name: str
    visited_at: datetime
    submitted_at: datetime | None
    written_up_late: bool
    seen: bool
    seen_alone: bool | None


def signoff_queue(store: Store, manager: Worker, rules: RuleSet | None = None) -> list[QueueItem]:
    """Submitted visits to children in the manager's team(s), oldest first: they wait for sign-off."""
    rules = rules or load_rules()

    def work(session: Session) -> tuple[list[Visit], dict[str, Child], dict[str, str]]:
        store.require_role(session, manager, Role.manager.value, what="/signoff")
        teams = store.managed_team_ids(session, manager)
        query = select(Visit, Child).where(Visit.child_id == Child.id, col(Child.team_id).in_(teams),
                                           Visit.status == RecordStatus.submitted.value).order_by(
            col(Visit.submitted_at), col(Visit.visited_at))
        pairs = list(session.exec(query))
        children = {c.id: c for _, c in pairs}
        return [v for v, _ in pairs], children, _names(session, [v.worker_id for v, _ in pairs])

    visits, children, names = _checked(store, work)
    opened = {cid: store.opened(c).body.name for cid, c in children.items()}
    return [QueueItem(
        visit_id=v.id, child_id=v.child_id, child_name=opened[v.child_id], worker_name=names.get(v.worker_id, ""),
        visited_at=v.visited_at, submitted_at=v.submitted_at, seen=v.seen, seen_alone=v.seen_alone,
        written_up_late=v.written_up_at is not None and is_late_write_up(
            local_date(v.visited_at), local_date(v.written_up_at), rules),
    ) for v in visits]


@dataclass
class VisitForReview:
    visit: Opened[Visit]
    child_name: str
    worker_name: str
    signed_off_by_name: str
    written_up_late: bool

    @property
    def awaiting_sign_off(self) -> bool:
        return self.visit.status == RecordStatus.submitted.value


def _visit_of_my_team(store: Store, session: Session, manager: Worker, visit_id: str) -> tuple[Visit, Child]:
    # Checked against the visit's child, so a refusal is audited on the record that was asked for.
    visit = session.get(Visit, visit_id) if visit_id else None
    child = store.require_manager_of(session, manager, visit.child_id if visit else "", kind="visit",
                                     record_id=visit_id)
    assert visit is not None  # require_manager_of refused an unknown visit
    return visit, child


def visit_for_review(store: Store, manager: Worker, visit_id: str, rules: RuleSet | None = None
                     ) -> VisitForReview:
    """A visit opened for its manager to read; the read is audited."""
    rules = rules or load_rules()

    def work(session: Session) -> tuple[Visit, Child, dict[str, str]]:
        visit, child = _visit_of_my_team(store, session, manager, visit_id)
        audit.append(session, "read", "visit", visit.id, worker_id=manager.id, child_id=child.id)
        return visit, child, _names(session, [visit.worker_id, visit.signed_off_by])

    visit, child, names = _checked(store, work)
    late = visit.written_up_at is not None and is_late_write_up(
        local_date(visit.visited_at), local_date(visit.written_up_at), rules)
    return VisitForReview(visit=store.opened(visit), child_name=store.opened(child).body.name,
                          worker_name=names.get(visit.worker_id, ""),
                          signed_off_by_name=names.get(visit.signed_off_by or "", ""), written_up_late=late)


def _decide(store: Store, manager: Worker, visit_id: str, decide: Callable[[Visit, Any], tuple[str, list[str]]],
            key: str = "") -> None:
    def work(session: Session) -> None:
        visit, child = _visit_of_my_team(store, session, manager, visit_id)
        refusal = policy.why_not_decide(policy.actor(manager, store.managed_team_ids(session, manager)), visit, child)
        if refusal:
            raise OversightError(refusal.message)
        body = store.opened(visit).body
        action, changed = decide(visit, body)
        visit.updated_at = utcnow()
        store.write(session, visit, body, actor=manager, action=action, changed=changed)

    _once(store, manager, key, "sign_off", visit_id, work)


def sign_off(store: Store, manager: Worker, visit_id: str, note: str, key: str = "") -> None:
    """Signs a submitted visit off with the manager's oversight note. From then it cannot be changed.

    With the form's submission `key`, once per key: a second tap changes nothing and is not refused."""
    note = (note or "").strip()
    if not note:
        raise OversightError("Write a management oversight note before signing the visit off.")

    def decide(visit: Visit, body: Any) -> tuple[str, list[str]]:
        body.manager_note = note
        visit.status = RecordStatus.signed_off.value
        visit.signed_off_by = manager.id
        visit.signed_off_at = utcnow()
        return "sign_off", ["status", "signed_off_by", "signed_off_at", "body.manager_note"]

    _decide(store, manager, visit_id, decide, key)


def return_to_worker(store: Store, manager: Worker, visit_id: str, reason: str, note: str = "") -> None:
    """Sends a submitted visit back to its worker, saying what to put right."""
    reason = (reason or "").strip()
    if not reason:
        raise OversightError("Say why the visit is being returned, so the worker knows what to put right.")

    def decide(visit: Visit, body: Any) -> tuple[str, list[str]]:
        body.return_reason = reason
        changed = ["status", "body.return_reason"]
        if note.strip():
            body.manager_note = note.strip()
            changed.append("body.manager_note")
        visit.status = RecordStatus.returned.value
        return "return", changed

    _decide(store, manager, visit_id, decide)


# ---------------------------------------------------------------- administration


@dataclass
class WorkerRow:
    id: str
    username: str
    name: str
    role: str
    team: str
    active: bool


@dataclass
class TeamInfo:
    id: str
    name: str
    managers: list[str]
    workers: int


@dataclass
class DeviceRow:
    id: str
    worker: str
    name: str
    enrolled_at: datetime
    last_seen_at: datetime | None
    revoked_at: datetime | None


@dataclass
class AdminView:
    workers: list[WorkerRow]
    teams: list[TeamInfo]
    devices: list[DeviceRow]


def admin_view(store: Store, admin: Worker) -> AdminView:
    """Workers, teams and devices: what an administrator manages. No case record is opened."""

    def work(session: Session) -> AdminView:
        store.require_role(session, admin, Role.admin.value, what="/admin")
        teams = {t.id: t for t in session.exec(select(Team).order_by(col(Team.name)))}
        workers = list(session.exec(select(Worker).order_by(col(Worker.display_name))))
        names = {w.id: w.display_name for w in workers}
        managers: dict[str, list[str]] = defaultdict(list)
        for link in session.exec(select(ManagedTeam)):
            managers[link.team_id].append(names.get(link.manager_id, link.manager_id))
        devices = list(session.exec(select(Device).order_by(col(Device.revoked_at).is_not(None),
                                                            col(Device.enrolled_at).desc())))
        return AdminView(
            workers=[WorkerRow(w.id, w.username, w.display_name, w.role,
                               teams[w.team_id].name if w.team_id in teams else "", w.active) for w in workers],
            teams=[TeamInfo(t.id, t.name, sorted(managers[t.id]), sum(1 for w in workers if w.team_id == t.id))
                   for t in teams.values()],
            devices=[DeviceRow(d.id, names.get(d.worker_id, d.worker_id), d.name, d.enrolled_at, d.last_seen_at,
                               d.revoked_at) for d in devices],
        )

    return _checked(store, work)


def revoke_device(store: Store, admin: Worker, device_id: str) -> None:
    """Revokes a device: the sync server refuses it from now on and tells it to wipe its local data."""

    def work(session: Session) -> None:
        store.require_role(session, admin, Role.admin.value, what="revoke device")
        device = session.get(Device, device_id) if device_id else None
        if device is None:
            raise OversightError("There is no such device; it may have been removed already.")
        if device.revoked_at is not None:
            raise OversightError("This device has already been revoked.")
        device.revoked_at = utcnow()
        store.write(session, device, None, actor=admin, action="revoke", changed=["revoked_at"])

    _checked(store, work)

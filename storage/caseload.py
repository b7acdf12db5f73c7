"""A worker's caseload, worst clock first: what the caseload screen and the offline picker show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlmodel import col, select

from storage.cases import cases_for
from storage.config import settings
from storage.models import Child, Placement, Worker
from storage.store import Store, age_on
from storage.timescales import STATUS_ORDER, UNWORKABLE, Clock, clocks_and_problems, is_missing
from storage.timescales.calendar import today_in_england

# A child whose clocks cannot be worked out comes first: nothing tells anyone when they are due.
UNKNOWN = "unknown"
RANK = {UNKNOWN: -1} | {status: n for n, status in enumerate(STATUS_ORDER)}


@dataclass
class CaseloadRow:
    child_id: str
    name: str
    initials: str
    age: int | None
    category: str
    worker_id: str | None
    team_id: str
    clocks: list[Clock] = field(default_factory=list)
    placement_town: str = ""
    placement_la: str = ""
    out_of_area: bool = False
    distance_km: float | None = None
    problem: str = ""  # why the child's clocks cannot be worked out (then there are none), or ""
    missing: bool = False  # missing now: a missing episode has begun and not ended

    @property
    def next_clock(self) -> Clock | None:
        return self.clocks[0] if self.clocks else None

    @property
    def status(self) -> str:
        if self.problem:
            return UNKNOWN
        return self.next_clock.status if self.next_clock else "on_track"

    @property
    def problem_line(self) -> str:
        return f"{UNWORKABLE}: {self.problem}" if self.problem else ""


def _sort_key(row: CaseloadRow) -> tuple[int, date, str]:
    if row.problem:
        return (RANK[UNKNOWN], date.min, row.name)
    clock = row.next_clock
    return (RANK[clock.status], clock.due, row.name) if clock else (len(RANK), date.max, row.name)


def caseload(store: Store, worker: Worker, on: date | None = None, children: list[Child] | None = None
             ) -> list[CaseloadRow]:
    """The children this worker may see, each with every clock (worst first), worst child first."""
    on = on or today_in_england()
    with store.session() as session:
        children = children if children is not None else store.visible_children(session, worker)
        cases = cases_for(session, children)
        current: dict[str, Placement] = {}
        ids = [c.id for c in children]
        if ids:
            for p in session.exec(select(Placement).where(col(Placement.child_id).in_(ids)).order_by(
                    col(Placement.start))):
                if p.end is None or p.child_id not in current or current[p.child_id].end is not None:
                    current[p.child_id] = p
    by_child: dict[str, list[Clock]] = {}
    clocks, problems = clocks_and_problems(cases, on)
    for clock in clocks:
        by_child.setdefault(clock.child, []).append(clock)
    missing = {case.id for case in cases if case.missing_episodes and is_missing(case, on)}
    rows = []
    for child in children:
        opened = store.opened(child)
        placement = current.get(child.id)
        town = store.opened(placement).body.town if placement else ""
        rows.append(CaseloadRow(
            child_id=child.id, name=opened.body.name, initials=opened.body.initials,
            age=age_on(opened.body.date_of_birth, on), category=child.category, worker_id=child.worker_id,
            team_id=child.team_id,
            clocks=sorted(by_child.get(child.id, []), key=lambda c: (RANK[c.status], c.due)),
            placement_town=town, placement_la=placement.local_authority if placement else "",
            out_of_area=bool(placement and placement.out_of_area),
            distance_km=placement.distance_km if placement else None, problem=problems.get(child.id, ""),
            missing=child.id in missing,
        ))
    return sorted(rows, key=_sort_key)


@dataclass
class ClosedRow:
    child_id: str
    name: str
    closed_on: date


def recently_closed(store: Store, worker: Worker, on: date | None = None) -> list[ClosedRow]:
    """The worker's own cases closed no more than `SEEN_CLOSED_CASE_DAYS` before `on` (England's date), latest
    first: a device keeps them that long (storage/sync/pull.py), so the worker can finish recording."""
    on = on or today_in_england()
    since = on - timedelta(days=max(0, settings().closed_case_days))
    with store.session() as session:
        children = session.exec(select(Child).where(Child.worker_id == worker.id, col(Child.closed_on).is_not(None),
                                                    col(Child.closed_on) >= since)).all()
        rows = [ClosedRow(child.id, store.opened(child).body.name, child.closed_on) for child in children
                if child.closed_on is not None]
    return sorted(rows, key=lambda row: (row.closed_on, row.name), reverse=True)

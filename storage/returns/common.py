"""What every statutory return shares: who may make one, the caseload read in one pass, and safe CSV files.

An export holds identifying data in the clear, so only a manager (their teams' children) or an administrator
(every child) makes one; each export is audited (who, which return, how many children); each file is new,
readable by its owner only, and never written over an existing one.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select as core_select
from sqlmodel import Session, select

from storage import access, audit
from storage.models import (
    CarePeriod,
    CarePlan,
    Child,
    ChildBody,
    MissingEpisode,
    Placement,
    PlacementBody,
    RecordStatus,
    Review,
    Role,
    Visit,
    Worker,
    table_of,
)
from storage.store import Store

EXPORT_REFUSAL = "Only a team manager or an administrator may export a statutory return: it holds children's details."


class ExportRefused(audit.Refusal):
    """An export that was not made, with the reason in words (audited when it is about who asked)."""


def exporter(session: Session, username: str) -> Worker:
    """The worker making an export: a manager or an administrator; anyone else is refused, and audited."""
    worker = session.exec(select(Worker).where(Worker.username == username.strip().lower())).first()
    if worker is None:
        raise audit.refuse(session, ExportRefused(
            f"There is no worker called {username}: give the exporting manager with --by.", kind="export",
            record_id="return"))
    if not worker.active or not (worker.role == Role.admin.value or access.is_manager(session, worker)):
        raise audit.refuse(session, ExportRefused(EXPORT_REFUSAL, kind="export", record_id="return",
                                                  worker_id=worker.id))
    return worker


def children_in_scope(session: Session, worker: Worker) -> list[Child]:
    """The children an export covers: an administrator's is the authority's, a manager's their teams'."""
    children = list(session.exec(select(Child)))
    if worker.role == Role.admin.value:
        return children
    teams = access.managed_team_ids(session, worker)
    return [child for child in children if child.team_id in teams]


def audit_export(session: Session, worker: Worker, which: str, children: int) -> None:
    audit.append(session, "export", "return", which, worker_id=worker.id, detail=f"{which}: {children} children")


# ---------------------------------------------------------------- the caseload, read once


@dataclass(frozen=True)
class PlanRow:
    """A CP or CIN plan as a return reads it (a `care_plan` row, or one a child's dates imply)."""

    id: str
    child_id: str
    kind: str
    start: date
    ended: date | None = None


@dataclass(frozen=True)
class PeriodRow:
    """A period of care as a return reads it (a `care_period` row, or one "looked after since" implies)."""

    id: str
    child_id: str
    start: date
    end: date | None = None
    legal_status: str = ""
    primary_need: str = ""
    start_reason: str = "S"
    end_reason: str = ""


# The columns of visits and reviews a return reads: only these are fetched (an authority has millions).
VISIT_COLUMNS = ("id", "child_id", "visited_at", "seen", "seen_alone", "bedroom_seen", "status")
REVIEW_COLUMNS = ("id", "child_id", "kind", "scheduled_for", "held_on", "participation", "cancelled", "plan_id",
                  "quorate", "plan_continues")


@dataclass
class Caseload:
    """Everything a return reads, grouped by child. Bodies are opened only where a return needs them."""

    children: list[Child]
    bodies: dict[str, ChildBody] = field(default_factory=dict)
    visits: dict[str, list[Visit]] = field(default_factory=lambda: defaultdict(list))
    reviews: dict[str, list[Review]] = field(default_factory=lambda: defaultdict(list))
    placements: dict[str, list[Placement]] = field(default_factory=lambda: defaultdict(list))
    placement_bodies: dict[str, PlacementBody] = field(default_factory=dict)
    missing: dict[str, list[MissingEpisode]] = field(default_factory=lambda: defaultdict(list))
    plans: dict[str, list[PlanRow]] = field(default_factory=lambda: defaultdict(list))
    periods: dict[str, list[PeriodRow]] = field(default_factory=lambda: defaultdict(list))
    _cp_plans: dict[str, list[PlanRow]] = field(default_factory=dict)  # each child's, sorted, once

    def cp_plan_on(self, child_id: str, day: date) -> PlanRow | None:
        """The child protection plan open on a day (else the latest begun before it)."""
        plans = self._cp_plans.get(child_id)
        if plans is None:
            plans = self._cp_plans[child_id] = sorted((p for p in self.plans[child_id] if p.kind == "cp_plan"),
                                                      key=lambda p: p.start)
        open_then = [p for p in plans if p.start <= day and (p.ended is None or p.ended >= day)]
        before = [p for p in plans if p.start <= day]
        chosen = open_then or before or plans
        return chosen[-1] if chosen else None

    def period_on(self, child_id: str, day: date) -> PeriodRow | None:
        for period in self.periods[child_id]:
            if period.start <= day and (period.end is None or period.end >= day):
                return period
        return None


def load_caseload(store: Store, session: Session, children: Sequence[Child], *, bodies: bool = True,
                  placement_bodies: bool = True) -> Caseload:
    """The records of these children that a return reads: submitted visits (the latest version of each),
    reviews, placements, missing episodes, plans and periods of care."""
    caseload = Caseload(children=sorted(children, key=lambda c: c.id))
    wanted = {child.id for child in children}
    if bodies:
        for child in caseload.children:
            caseload.bodies[child.id] = cast(ChildBody, store.opened(child).body)
    # Visits, reviews, plans and periods are most of an authority's rows: read as plain rows of the columns a
    # return reads (by name, as the models have them), not ORM objects, which would cost most of an export's time.
    visits = table_of(Visit)
    superseded = set(session.scalars(core_select(visits.c.supersedes).where(visits.c.supersedes.is_not(None))))
    for visit in session.execute(core_select(*(visits.c[name] for name in VISIT_COLUMNS))
                                 .where(visits.c.status != RecordStatus.draft.value).order_by(visits.c.visited_at)
                                 ).all():
        if visit.child_id in wanted and visit.id not in superseded:
            caseload.visits[visit.child_id].append(cast(Visit, visit))
    reviews = table_of(Review)
    for review in session.execute(core_select(*(reviews.c[name] for name in REVIEW_COLUMNS))
                                  .order_by(reviews.c.scheduled_for)).all():
        if review.child_id in wanted:
            caseload.reviews[review.child_id].append(cast(Review, review))
    for model, shape, into in ((CarePlan, PlanRow, caseload.plans), (CarePeriod, PeriodRow, caseload.periods)):
        table = table_of(model)
        names = [name for name in shape.__dataclass_fields__]
        for row in session.execute(core_select(*(table.c[name] for name in names)).order_by(table.c.start)):
            if row.child_id in wanted:
                into[row.child_id].append(shape(*row))  # type: ignore[arg-type]
    groups: Iterable[tuple[Any, dict[str, list[Any]], Any]] = (
        (Placement, caseload.placements, Placement.start), (MissingEpisode, caseload.missing, MissingEpisode.start))
    for model, into, order in groups:
        for row in session.exec(select(model).order_by(order)):
            if row.child_id in wanted:
                into[row.child_id].append(row)
    for child in caseload.children:
        _fill_from_child(caseload, child)
    if placement_bodies:
        for rows in caseload.placements.values():
            for placement in rows:
                caseload.placement_bodies[placement.id] = cast(PlacementBody, store.opened(placement).body)
    return caseload


def _fill_from_child(caseload: Caseload, child: Child) -> None:
    """A child imported with only the dates on their record (looked after since, initial conference, CIN plan
    start) still has the period of care or plan those dates begin; its id is stable, derived from the child's."""
    def derived(what: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"seen-{what}:{child.id}"))

    if child.looked_after_since and not caseload.periods[child.id]:
        caseload.periods[child.id].append(PeriodRow(derived("period"), child.id, child.looked_after_since,
                                                    legal_status=child.legal_status))
    starts = {"cp_plan": child.initial_conference, "cin_plan": child.cin_plan_start}
    for kind, start in starts.items():
        if start and not any(plan.kind == kind for plan in caseload.plans[child.id]):
            caseload.plans[child.id].append(PlanRow(derived(kind), child.id, kind, start))


def child_plans(session: Session, child: Child) -> list[PlanRow]:
    """One child's CP and CIN plans as the returns read them (with those their dates imply), for a form's checks."""
    caseload = Caseload(children=[child])
    table = table_of(CarePlan)
    names = list(PlanRow.__dataclass_fields__)
    for row in session.execute(core_select(*(table.c[name] for name in names))
                               .where(table.c.child_id == child.id).order_by(table.c.start)):
        caseload.plans[child.id].append(PlanRow(*row))
    _fill_from_child(caseload, child)
    return caseload.plans[child.id]


def review_day(review: Review) -> date | None:
    """The day a review happened (None if it has not, or was cancelled)."""
    return None if review.cancelled else review.held_on


# ---------------------------------------------------------------- values


YES_NO = {True: "Y", False: "N"}


def yes_no(value: bool | None) -> str:
    """A strict Y or N: not known is not yes."""
    return "Y" if value else "N"


def iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def dmy(day: date | None) -> str:
    """SSDA903's date format."""
    return day.strftime("%d/%m/%Y") if day else ""


def age_on(dob: date | None, day: date) -> int | None:
    if dob is None:
        return None
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


# ---------------------------------------------------------------- files


@dataclass(frozen=True)
class Table:
    """One file of a return: its name, its columns and its rows."""

    name: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


def refuse_existing(paths: Iterable[Path]) -> None:
    """Refuses before anything is written if any file is already there: an export never overwrites."""
    there = [str(path) for path in paths if path.exists()]
    if there:
        raise ExportRefused(f"{', '.join(there)} already exist{'s' if len(there) == 1 else ''}; an export never "
                            "writes over a file. Choose a new folder or file name.")


def write_tables(directory: Path, tables: Sequence[Table], *, prefix: str = "") -> list[Path]:
    """Writes each table as DIR/<prefix><name>.csv, owner-only (0600), none over an existing file."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = [directory / f"{prefix}{table.name}.csv" for table in tables]
    refuse_existing(paths)
    for path, table in zip(paths, tables, strict=True):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(table.columns)
            writer.writerows(table.rows)
    return paths

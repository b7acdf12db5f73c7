"""Importing a caseload exported from a council's case management system (CSV, one row per child).

The whole file is checked before anything is written: every bad row is reported with its line number,
column and reason, and a file with any bad row imports nothing. Record ids are derived from the
council's own references, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from storage.models import (
    FOSTER_PLACEMENTS,
    LEGAL_STATUSES,
    PLACEMENT_ARRANGEMENTS,
    PLACEMENT_TYPES,
    REVIEW_KINDS,
    Category,
    Child,
    ChildBody,
    MissingEpisode,
    MissingEpisodeBody,
    Placement,
    PlacementBody,
    RecordStatus,
    Review,
    ReviewBody,
    Team,
    Visit,
    VisitBody,
    Worker,
)
from storage.record_dates import CaseDates, date_problem
from storage.returns.common import PlanRow
from storage.returns.rules import PARTICIPATION, placement_problems, review_problems
from storage.store import Store
from storage.timescales import NEEDS, RuleError, add_months
from storage.timescales.calendar import today_in_england
from storage.timescales.rules import plan_period

REQUIRED = ["child_ref", "first_name", "last_name", "category", "team"]
COLUMNS = REQUIRED + [
    "date_of_birth", "legal_status", "worker", "looked_after_since", "strategy_discussion",
    "initial_conference", "cin_plan_start", "case_managed_since", "referral", "assessment_completed",
    "ethnicity", "first_language", "religion", "disability",
    "placement_type", "placement_start", "placement_end", "placement_provider", "placement_address",
    "placement_postcode", "placement_town", "placement_la", "out_of_area", "distance_km", "long_term",
    "placement_arrangement", "child_agreed_less_frequent", "last_visit_date", "last_visit_seen", "last_visit_seen_alone",
    "last_review_kind", "last_review_date", "care_leaver_since", "plan_visit_every",
    "missing_start", "missing_end", "return_interview", "health_assessment_kind", "health_assessment_date",
    # For the statutory returns (storage/returns/): SSDA903's participation code, provider code and Ofsted URN.
    "last_review_participation", "placement_provider_code", "placement_urn",
]
CLOCK_START = {
    "cic": "looked_after_since",
    "cp": "strategy_discussion",
    "cin": "cin_plan_start",
    "case_managed": "case_managed_since",
    "care_leaver": "care_leaver_since",
}
HEALTH_KINDS = {"initial": "initial_health_assessment", "review": "review_health_assessment"}
TRUE = {"yes", "y", "true", "1"}
FALSE = {"no", "n", "false", "0"}


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.reason}"


class ImportRejected(Exception):
    """The file had bad rows; nothing was imported."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"Nothing was imported: {len(errors)} problem(s) to fix in the file.\n{lines}")


@dataclass
class ImportSummary:
    created: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, int], kind: str) -> None:
        bucket[kind] = bucket.get(kind, 0) + 1

    def __str__(self) -> str:
        made = ", ".join(f"{n} {k}" for k, n in sorted(self.created.items())) or "nothing new"
        same = sum(self.unchanged.values())
        return f"Imported {made}; {same} record(s) were already there and left as they were."


def _parse_date(value: str) -> date:
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"'{value}' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


@dataclass
class _Row:
    line: int
    values: dict[str, str]
    errors: list[RowError]
    parsed: dict[str, Any] = field(default_factory=dict)

    def text(self, column: str) -> str:
        return (self.values.get(column) or "").strip()

    def fail(self, column: str, reason: str) -> None:
        self.errors.append(RowError(self.line, column, reason))

    def date(self, column: str, required: bool = False) -> date | None:
        raw = self.text(column)
        if not raw:
            if required:
                self.fail(column, "is required here")
            return None
        try:
            return _parse_date(raw)
        except ValueError as e:
            self.fail(column, str(e))
            return None

    def flag(self, column: str) -> bool | None:
        raw = self.text(column).lower()
        if not raw:
            return None
        if raw in TRUE:
            return True
        if raw in FALSE:
            return False
        self.fail(column, f"'{self.text(column)}' is not yes or no")
        return None


def _check(row: _Row, workers: dict[str, Worker], today: date) -> None:
    p = row.parsed
    for column in REQUIRED:
        if not row.text(column):
            row.fail(column, "is required")
    category = row.text("category").lower()
    if category and category not in {c.value for c in Category}:
        row.fail("category", f"'{row.text('category')}' is not one of cin, cp, cic, case_managed, care_leaver")
    p["category"] = category
    legal = row.text("legal_status").upper()
    if legal and legal not in LEGAL_STATUSES:
        row.fail("legal_status", f"'{row.text('legal_status')}' is not an SSDA903 legal status code")
    p["legal_status"] = legal
    username = row.text("worker")
    if username and username not in workers:
        row.fail("worker", f"no worker with username '{username}' (add the worker first)")
    p["worker"] = workers.get(username)
    p["date_of_birth"] = row.date("date_of_birth")
    if p["date_of_birth"] and p["date_of_birth"] > today:
        row.fail("date_of_birth", "is in the future")
    for column in (*CLOCK_START.values(), "initial_conference", "referral", "assessment_completed"):
        p[column] = row.date(column, required=CLOCK_START.get(category) == column)
    p["placement_type"] = row.text("placement_type").upper()
    if p["placement_type"]:
        if p["placement_type"] not in PLACEMENT_TYPES:
            row.fail("placement_type", f"'{row.text('placement_type')}' is not an SSDA903 placement type code")
        if category not in ("cic", "care_leaver"):
            row.fail("placement_type", "only a child in care (cic) has a placement, or a care leaver their home")
        p["placement_start"] = row.date("placement_start", required=True)
        p["placement_end"] = row.date("placement_end")
        # An end before the start is the returns' rule 356 (_check_returns), as on the child's page.
        p["out_of_area"] = bool(row.flag("out_of_area"))
        p["long_term"] = bool(row.flag("long_term"))
        distance = row.text("distance_km")
        p["distance_km"] = None
        if distance:
            try:
                p["distance_km"] = float(distance)
                if p["distance_km"] < 0:
                    raise ValueError
            except ValueError:
                row.fail("distance_km", f"'{distance}' is not a distance in kilometres")
        arrangement = row.text("placement_arrangement") or "standard"
        if arrangement not in PLACEMENT_ARRANGEMENTS:
            row.fail("placement_arrangement", f"'{arrangement}' is not one of {', '.join(PLACEMENT_ARRANGEMENTS)}")
        p["arrangement"] = arrangement
        # reg 28(3A): only a child in a long-term foster placement can agree to fewer visits.
        p["child_agreed_less_frequent"] = bool(row.flag("child_agreed_less_frequent"))
        if p["child_agreed_less_frequent"] and not (p["long_term"] and p["placement_type"] in FOSTER_PLACEMENTS):
            row.fail("child_agreed_less_frequent", "only a child in a long-term foster placement (long_term yes, "
                     "placement type U1 to U6) can agree to be visited less often (reg 28(3A))")
    elif category == "cic":
        # The timescales engine times a child in care's visits from their placement: without one, nothing
        # would say when they are due (storage/timescales/clocks.py NEEDS).
        row.fail("placement_type", NEEDS["placements"])
    p["last_visit_date"] = row.date("last_visit_date")
    if p["last_visit_date"]:
        # The same check as every other way a visit comes in (a last visit before the case opened is the
        # council's record, not a slip: only the future and before birth are refused).
        problem = date_problem(p["last_visit_date"], CaseDates(born=p["date_of_birth"]), "last visit", today=today)
        if problem is not None:
            row.fail("last_visit_date", problem.message)
        seen = row.flag("last_visit_seen")
        if seen is None and not row.text("last_visit_seen"):
            row.fail("last_visit_seen", "say yes or no: was the child seen?")
        p["last_visit_seen"] = bool(seen)
        p["last_visit_seen_alone"] = row.flag("last_visit_seen_alone")
        if p["worker"] is None:
            row.fail("worker", "a visit needs the worker who made it")
    kind = row.text("last_review_kind")
    p["last_review_date"] = row.date("last_review_date", required=bool(kind))
    if kind and kind not in REVIEW_KINDS:
        row.fail("last_review_kind", f"'{kind}' is not one of {', '.join(REVIEW_KINDS)}")
    if p["last_review_date"] and not kind:
        row.fail("last_review_kind", "is required when last_review_date is given")
    participation = row.text("last_review_participation").upper()
    if participation and participation not in PARTICIPATION:
        row.fail("last_review_participation", f"'{participation}' is not an SSDA903 participation code (PN0 to PN7)")
    _check_returns(row)
    _check_timescales_two(row, today)


# The import's columns for the fields the returns' rules name (storage/returns/rules.py).
RULE_COLUMNS = {"end": "placement_end", "provider_code": "placement_provider_code", "urn": "placement_urn",
                "participation": "last_review_participation", "held_on": "last_review_date"}


def _check_returns(row: _Row) -> None:
    """The returns' rules that refuse a review or placement on the child's page refuse the row too (a warning
    there, such as a review with no participation code, is imported and listed on the Returns page)."""
    p = row.parsed
    found = []
    if p.get("placement_type") and p.get("placement_start"):
        found += placement_problems(Placement(
            child_id="", placement_type=p["placement_type"], start=p["placement_start"], end=p.get("placement_end"),
            provider_code=row.text("placement_provider_code").upper(), urn=row.text("placement_urn")),
            p["date_of_birth"], followed=False)
    kind = row.text("last_review_kind")
    if p["last_review_date"] and kind in REVIEW_KINDS:
        plans = [PlanRow("", "", "cp_plan", p["initial_conference"])] if p.get("initial_conference") else []
        found += review_problems(Review(child_id="", kind=kind, held_on=p["last_review_date"],
                                        participation=row.text("last_review_participation").upper() or None),
                                 p["date_of_birth"], plans)
    for problem in found:
        if problem.blocks:
            row.fail(RULE_COLUMNS.get(problem.field, problem.field), problem.words)


def _check_timescales_two(row: _Row, today: date) -> None:
    """The plan's visit frequency, the last missing episode and the last health assessment."""
    p = row.parsed
    p["plan_visit_every"] = row.text("plan_visit_every")
    if p["plan_visit_every"]:
        try:
            p["plan_visit_every"] = plan_period(p["plan_visit_every"]).text
        except RuleError as e:
            row.fail("plan_visit_every", str(e))
    p["missing_start"] = row.date("missing_start", required=bool(row.text("missing_end")))
    p["missing_end"] = row.date("missing_end", required=bool(row.text("return_interview")))
    p["return_interview"] = row.date("return_interview")
    if p["missing_start"] and p["missing_end"] and p["missing_end"] < p["missing_start"]:
        row.fail("missing_end", "is before missing_start")
    if p["missing_end"] and p["return_interview"] and p["return_interview"] < p["missing_end"]:
        row.fail("return_interview", "is before missing_end: the interview follows the child's return")
    for column in ("missing_start", "missing_end", "return_interview"):
        if p[column] and p[column] > today:
            row.fail(column, "is in the future")
    kind = row.text("health_assessment_kind")
    p["health_assessment_date"] = row.date("health_assessment_date", required=bool(kind))
    if kind and kind not in HEALTH_KINDS:
        row.fail("health_assessment_kind", f"'{kind}' is not one of {', '.join(HEALTH_KINDS)}")
    if p["health_assessment_date"] and not kind:
        row.fail("health_assessment_kind", "is required when health_assessment_date is given")
    p["health_assessment_kind"] = kind


def read_rows(text: str, workers: dict[str, Worker], today: date) -> tuple[list[_Row], list[RowError]]:
    errors: list[RowError] = []
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        return [], [RowError(1, c, "this column is missing from the header") for c in missing]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        return [], [RowError(1, c, "is not a column Seen knows; check the spelling") for c in unknown]
    rows: list[_Row] = []
    seen_refs: dict[str, int] = {}
    for values in reader:
        row = _Row(reader.line_num, {k.strip(): v for k, v in values.items() if k}, errors)
        if None in values:
            row.fail("(row)", "has more cells than the header has columns")
        _check(row, workers, today)
        ref = row.text("child_ref")
        if ref in seen_refs:
            row.fail("child_ref", f"'{ref}' is also on line {seen_refs[ref]}")
        seen_refs.setdefault(ref, row.line)
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(2, "(file)", "there are no children in this file"))
    return rows, errors


def import_csv(store: Store, path: Path | str, today: date | None = None) -> ImportSummary:
    text = Path(path).read_text(encoding="utf-8-sig")
    return import_text(store, text, today)


def import_text(store: Store, text: str, today: date | None = None) -> ImportSummary:
    """Checks the whole file, then writes it in one transaction; raises ImportRejected on any bad row."""
    today = today or today_in_england()
    with store.session() as session:
        workers = {w.username: w for w in session.exec(select(Worker))}
    rows, errors = read_rows(text, workers, today)
    if errors:
        raise ImportRejected(errors)
    summary = ImportSummary()
    with store.session() as session:
        teams = {t.name: t for t in session.exec(select(Team))}
        for row in rows:
            _write_row(store, session, row, teams, summary)
    return summary


def _insert(store: Store, session: Session, row: Any, body: Any, summary: ImportSummary, kind: str) -> None:
    if session.get(type(row), row.id) is not None:
        summary.count(summary.unchanged, kind)
        return
    store.write(session, row, body, action="import")
    summary.count(summary.created, kind)


def _write_row(store: Store, session: Session, row: _Row, teams: dict[str, Team], summary: ImportSummary) -> None:
    p = row.parsed
    ref = row.text("child_ref")
    team_name = row.text("team")
    team = teams.get(team_name)
    if team is None:
        team = teams[team_name] = Team(name=team_name)
        session.add(team)
        session.flush()
        summary.count(summary.created, "teams")
    worker: Worker | None = p["worker"]
    child = Child(
        id=store.id_for_ref("child", ref), category=p["category"], legal_status=p["legal_status"],
        team_id=team.id, worker_id=worker.id if worker else None, ref_hash=store.ref_hash(ref),
        birth_year=p["date_of_birth"].year if p["date_of_birth"] else None,
        **{k: p[k] for k in (*CLOCK_START.values(), "initial_conference", "referral", "assessment_completed")},
        plan_visit_every=p["plan_visit_every"],
    )
    body = ChildBody(
        first_name=row.text("first_name"), last_name=row.text("last_name"), date_of_birth=p["date_of_birth"],
        ethnicity=row.text("ethnicity"), first_language=row.text("first_language"), religion=row.text("religion"),
        disability=row.text("disability"), external_ref=ref,
    )
    _insert(store, session, child, body, summary, "children")
    if p.get("placement_type"):
        placement = Placement(
            id=store.id_for_ref("placement", ref, str(p["placement_start"])), child_id=child.id,
            placement_type=p["placement_type"], start=p["placement_start"], end=p["placement_end"],
            long_term=p["long_term"], arrangement=p["arrangement"],
            child_agreed_less_frequent=p["child_agreed_less_frequent"], local_authority=row.text("placement_la"),
            out_of_area=p["out_of_area"], distance_km=p["distance_km"],
            provider_code=row.text("placement_provider_code").upper(), urn=row.text("placement_urn"),
        )
        _insert(store, session, placement, PlacementBody(
            provider=row.text("placement_provider"), address=row.text("placement_address"),
            postcode=row.text("placement_postcode"), town=row.text("placement_town")), summary, "placements")
    if p["last_visit_date"] and worker is not None:
        moment = datetime.combine(p["last_visit_date"], time(12, 0), tzinfo=UTC)
        visit = Visit(
            id=store.id_for_ref("visit", ref, str(p["last_visit_date"])), child_id=child.id, worker_id=worker.id,
            visited_at=moment, seen=p["last_visit_seen"], seen_alone=p["last_visit_seen_alone"],
            status=RecordStatus.signed_off.value, written_up_at=moment, submitted_at=moment,
            # Its submission key is made from the council's reference too: the same row imported again is the
            # same submission (storage/submissions.py), whichever path stored it.
            submission_key=store.id_for_ref("submission", "visit", ref, str(p["last_visit_date"])),
        )
        _insert(store, session, visit, VisitBody(observations="Imported from the case management system."),
                summary, "visits")
    if p["last_review_date"]:
        kind = row.text("last_review_kind")
        review = Review(id=store.id_for_ref("review", ref, kind, str(p["last_review_date"])), child_id=child.id,
                        kind=kind, scheduled_for=p["last_review_date"], held_on=p["last_review_date"],
                        participation=row.text("last_review_participation").upper() or None)
        _insert(store, session, review, ReviewBody(), summary, "reviews")
    _write_timescales_two(store, session, row, child, summary)


def _write_timescales_two(store: Store, session: Session, row: _Row, child: Child, summary: ImportSummary) -> None:
    p, ref = row.parsed, row.text("child_ref")
    if p["missing_start"]:
        episode = MissingEpisode(id=store.id_for_ref("missing_episode", ref, str(p["missing_start"])),
                                 child_id=child.id, start=p["missing_start"], end=p["missing_end"],
                                 interview_offered_on=p["return_interview"])
        _insert(store, session, episode, MissingEpisodeBody(), summary, "missing episodes")
    if p["health_assessment_date"]:
        kind, held, born = HEALTH_KINDS[p["health_assessment_kind"]], p["health_assessment_date"], p["date_of_birth"]
        review = Review(id=store.id_for_ref("review", ref, kind, str(held)), child_id=child.id, kind=kind,
                        scheduled_for=held, held_on=held,
                        under_five=None if born is None else held < add_months(born, 60))
        _insert(store, session, review, ReviewBody(), summary, "reviews")

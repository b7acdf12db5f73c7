"""What every clock counts with: the day asked about, the rule as a sentence, what a case must have, and the
latest visit or review a clock counts from."""

from __future__ import annotations

from datetime import date

from storage.timescales.calendar import show_date
from storage.timescales.facts import CATEGORIES, Case, CaseError, Clock, ReviewFacts, VisitFacts
from storage.timescales.rules import Period, Rule, RuleSet

_whys: dict[tuple[str, str, date, str, date | None], str] = {}


def _why(period: Period, template: str, d: date, words: str = "", first: date | None = None) -> str:
    """A clock's rule as a sentence. Remembered: a caseload's 200,000 clocks need only a few
    thousand distinct sentences, and sharing them keeps the answer small as well as quick."""
    key = (template, period.text, d, words, first)
    text = _whys.get(key)
    if text is None:
        if len(_whys) > 100_000:
            _whys.clear()
        text = template.format(
            period=period.text, date=show_date(d), words=words, first=show_date(first) if first else ""
        )
        _whys[key] = text
    return text


class _Day:
    """The date asked about, with the due-soon horizon worked out once for a whole caseload."""

    __slots__ = ("on", "soon")

    def __init__(self, on: date, rules: RuleSet) -> None:
        self.on = on
        self.soon = rules.due_soon.after(on)

    def status(self, due: date) -> str:
        on = self.on
        if due < on:
            return "overdue"
        if due == on:
            return "due_today"
        if due <= self.soon:
            return "due_soon"
        return "on_track"


def _missing(case: Case, field: str) -> CaseError:
    what = NEEDS[field]
    return CaseError(case.id, field, f"{what}; add it to the child's record")


NEEDS = {
    "looked_after_since": "a child in care needs the date they became looked after, to time their reviews",
    "placements": "a child in care needs at least one placement, to time their visits",
    "strategy_discussion": (
        "a child protection case with no initial conference yet needs the date of the strategy "
        "discussion, to time the conference"
    ),
    "cin_plan_start": "a child in need needs the date their plan started, to time their visits and reviews",
    "case_managed_since": "a case-managed child needs the date the case became case managed, to time reviews",
    "care_leaver_since": (
        "a care leaver needs the date they became a relevant or former relevant child, to time their personal "
        "adviser's visits and pathway plan reviews"
    ),
    "date_of_birth": (
        "a child in care with a health assessment needs their date of birth, to know whether they were under "
        "five that day"
    ),
}


def check_needs(case: Case) -> None:
    """Raise CaseError if the case lacks a date one of its clocks counts from."""
    c = case.category
    if c == "cic":
        if case.looked_after_since is None:
            raise _missing(case, "looked_after_since")
        if not case.placements:
            raise _missing(case, "placements")
        if case.date_of_birth is None and any(a.under_five is None for a in case.health_assessments or ()):
            raise _missing(case, "date_of_birth")
    elif c == "cp":
        if case.initial_conference is None and case.strategy_discussion is None:
            raise _missing(case, "strategy_discussion")
    elif c == "cin":
        if case.cin_plan_start is None:
            raise _missing(case, "cin_plan_start")
    elif c == "case_managed":
        if case.case_managed_since is None:
            raise _missing(case, "case_managed_since")
    elif c == "care_leaver":
        if case.care_leaver_since is None:
            raise _missing(case, "care_leaver_since")
    else:
        raise CaseError(case.id, "category", f"unknown category {c!r}: use one of {', '.join(CATEGORIES)}")


def _last_seen_visit(visits: tuple[VisitFacts, ...], since: date, on: date) -> date | None:
    """The last visit where the child was seen, on or after `since` and not after `on`."""
    for v in reversed(visits):  # a Case keeps its visits in date order
        d = v.date
        if d <= on:
            if d < since:
                return None
            if v.seen:
                return d
    return None


def _last_reviews(
    reviews: tuple[ReviewFacts, ...], kind: str, since: date, on: date
) -> tuple[date | None, bool]:
    """The last review of `kind` held from `since` to `on`, and whether there was one before it too."""
    last = None
    for r in reversed(reviews):  # a Case keeps its reviews in date order
        d = r.date
        if d <= on:
            if d < since:
                break
            if r.kind == kind:
                if last is not None:
                    return last, True
                last = d
    return last, False


def _first_review(reviews: tuple[ReviewFacts, ...], kind: str, since: date, on: date) -> date | None:
    """The first review of `kind` held from `since` to `on`."""
    for r in reviews:  # in date order
        d = r.date
        if d > on:
            return None
        if d >= since and r.kind == kind:
            return d
    return None


def _review_clock(case: Case, day: _Day, first_then: tuple[Rule, Rule], clock: str, since: date, first: str,
                  then: str, out: list[Clock]) -> None:
    """A CP or CiN review clock (the review kind is the clock's name): the first from `since`, then from the
    last review held."""
    last_review, _ = _last_reviews(case.reviews, clock, since, day.on)
    if last_review is None:
        rule = first_then[0]
        due = rule.period.after(since)
        why = _why(rule.period, first, since)
    else:
        rule = first_then[1]
        due = rule.period.after(last_review)
        why = _why(rule.period, then, last_review)
    out.append(Clock(case.id, clock, due, day.status(due), why, rule.source))

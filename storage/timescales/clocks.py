"""Statutory timescales: for each child, which visits and reviews are due, when, and which rule says so.

The one engine the app's pages, the push scheduler and `seen due` all call. It is pure: it takes
plain facts about a child (`Case`) and a date, and returns `Clock`s. It reads no database and
imports neither SQLModel nor NiceGUI; the numbers and citations come from a rule file
(`storage/rules.toml`, overridable with `SEEN_RULES`), the logic of which date each clock counts
from is here.

Which clocks a child has (one `Clock` per child per clock that applies):

| category       | clocks                                                                        |
| -------------- | ----------------------------------------------------------------------------- |
| `cic`          | `cic_visit`, `cic_review`                                                     |
| `cp`           | `initial_conference` until the conference is held; then `cp_visit`, `cp_review` |
| `cin`          | `cin_visit`, `cin_review`                                                     |
| `case_managed` | `case_managed_review`                                                         |
| any            | `assessment`, while there is a `referral` and no `assessment_completed`       |

A child on a CP plan is also a child in need, but their CP clocks are the stricter ones, so they
do not get CiN clocks as well. Review kinds `health_assessment` and `pep_review` are accepted but
drive no clock yet. The CP initial conference is the case's `initial_conference` date, not a review.

Clocks are worked out as at the date asked about (`on`): a visit, review, conference, completed
assessment or placement dated after `on` is ignored, as if it had not happened yet. So a review
that is only scheduled must not be passed in as a `ReviewFacts`: only held ones.

Date arithmetic: "+ N working days" is the Nth working day after the date, skipping Saturdays,
Sundays and England's bank holidays, substitute days included (the `holidays` package, GB/ENG).
"+ N days/weeks/months" is calendar; a month that lacks the day ends on its last day.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from types import MemberDescriptorType
from typing import Any

import holidays

CATEGORIES = ("cin", "cp", "cic", "case_managed")
REVIEW_KINDS = (
    "cic_review",
    "initial_conference",
    "cp_review",
    "cin_review",
    "case_managed_review",
    "health_assessment",
    "pep_review",
)
ARRANGEMENTS = (
    "standard",
    "parent_pending_assessment",
    "interim_care_order_with_parent",
    "connected_person_temporary",
    "care_order_with_parent",
)
CLOCKS = (
    "cic_visit",
    "cic_review",
    "initial_conference",
    "cp_visit",
    "cp_review",
    "cin_visit",
    "cin_review",
    "case_managed_review",
    "assessment",
)
STATUS_ORDER = ("overdue", "due_today", "due_soon", "on_track")
DEFAULT_RULES_PATH = Path(__file__).parent.with_name("rules.toml")

# ---------------------------------------------------------------- the facts a clock needs


@dataclass(frozen=True, slots=True)
class PlacementFacts:
    """One placement of a child in care: when it began and ended, and what kind it is."""

    start: date
    end: date | None
    long_term: bool = False  # intended to last until the child is 18
    # One of ARRANGEMENTS. For `care_order_with_parent` (reg 28(5)) the placement starts on the day the care
    # order was made: a change of legal status starts a new placement, as the SSDA903 return records it.
    arrangement: str = "standard"
    child_agreed_less_frequent: bool = False  # reg 28(3A); counts only when long_term


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """A visit to the child. Only visits where the child was seen count towards a clock."""

    date: date
    seen: bool
    seen_alone: bool | None = None


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """A review or meeting that was held (not one that is only scheduled)."""

    kind: str  # one of REVIEW_KINDS
    date: date


@dataclass(frozen=True, slots=True)
class Case:
    """What the timescales engine knows about one child: the dates that start clocks, and history."""

    id: str
    category: str  # one of CATEGORIES
    looked_after_since: date | None = None
    strategy_discussion: date | None = None
    initial_conference: date | None = None
    cin_plan_start: date | None = None
    case_managed_since: date | None = None
    referral: date | None = None
    assessment_completed: date | None = None
    placements: tuple[PlacementFacts, ...] = ()
    visits: tuple[VisitFacts, ...] = ()  # given in any order, kept in date order
    reviews: tuple[ReviewFacts, ...] = ()  # given in any order, kept in date order

    def __post_init__(self) -> None:
        # History in date order lets the engine read the latest visit or review from the end
        # instead of walking two years of it for every child each time. Sorting here is cheap:
        # the objects were only just made, and a loader usually hands them over in order.
        _set_case_visits(self, tuple(sorted(self.visits, key=_by_date)))
        _set_case_reviews(self, tuple(sorted(self.reviews, key=_by_date)))
        _set_case_placements(self, tuple(self.placements))


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The slot's own setter, which writes a field of a frozen dataclass past its refusing __setattr__."""
    slot: MemberDescriptorType = cls.__dict__[name]
    return slot.__set__


_by_date = attrgetter("date")
_set_case_visits = _slot_setter(Case, "visits")
_set_case_reviews = _slot_setter(Case, "reviews")
_set_case_placements = _slot_setter(Case, "placements")


class CaseError(ValueError):
    """A case the engine cannot work with: it names the child and the field so it can be fixed."""

    def __init__(self, case_id: str, field: str, message: str) -> None:
        self.case_id = case_id
        self.field = field
        self.message = message
        super().__init__(f"case {case_id}, field '{field}': {message}")


class RuleError(ValueError):
    """A rule file that cannot be used (bad TOML, an unknown key, a period that is not a period)."""


@dataclass(frozen=True, slots=True, init=False)
class Clock:
    """One thing due for one child: when, how urgent on the day asked about, and the rule behind it."""

    child: str
    clock: str  # one of CLOCKS
    due: date
    status: str  # one of STATUS_ORDER
    rule: str  # a sentence a manager understands: "6 weeks after the last visit on 16 Nov 2026, ..."
    source: str  # the regulation, guidance or local procedure

    def __init__(self, child: str, clock: str, due: date, status: str, rule: str, source: str) -> None:
        # The generated frozen __init__ goes through object.__setattr__ per field; setting the
        # slots directly is twice as fast, which matters at 200,000 clocks a run.
        _set_child(self, child)
        _set_clock(self, clock)
        _set_due(self, due)
        _set_status(self, status)
        _set_rule(self, rule)
        _set_source(self, source)

    def to_json(self) -> dict[str, str]:
        return {
            "child": self.child,
            "clock": self.clock,
            "due": self.due.isoformat(),
            "status": self.status,
            "rule": self.rule,
            "source": self.source,
        }


_set_child = _slot_setter(Clock, "child")
_set_clock = _slot_setter(Clock, "clock")
_set_due = _slot_setter(Clock, "due")
_set_status = _slot_setter(Clock, "status")
_set_rule = _slot_setter(Clock, "rule")
_set_source = _slot_setter(Clock, "source")

# ---------------------------------------------------------------- working days and months

_TABLE_FIRST = date(2000, 1, 1)
_TABLE_LAST = date(2100, 12, 31)


class _WorkingDays:
    """England's working days 2000–2100 as a table, so adding N working days is two list lookups."""

    def __init__(self) -> None:
        self.holidays = holidays.country_holidays(
            "GB", subdiv="ENG", years=range(_TABLE_FIRST.year, _TABLE_LAST.year + 1)
        )
        self.base = _TABLE_FIRST.toordinal()
        self.size = _TABLE_LAST.toordinal() - self.base + 1
        # upto[i]: how many working days fall on or before day i; days[k]: the (k+1)th working day.
        self.upto: list[int] = []
        self.days: list[date] = []
        bank = self.holidays
        count = 0
        for i in range(self.size):
            d = date.fromordinal(self.base + i)
            if d.weekday() < 5 and d not in bank:
                count += 1
                self.days.append(d)
            self.upto.append(count)

    def is_working_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def add(self, d: date, n: int) -> date:
        i = d.toordinal() - self.base
        if 0 <= i < self.size:
            upto = self.upto[i]
            if n > 0:
                k = upto + n - 1
            elif n < 0:
                before = upto - 1 if (upto - (self.upto[i - 1] if i else 0)) else upto
                k = before + n
            else:
                return d
            if 0 <= k < len(self.days):
                return self.days[k]
        return self._add_slowly(d, n)

    def _add_slowly(self, d: date, n: int) -> date:
        # Outside the table (before 2000 or near 2100): step a day at a time. The holidays object
        # extends itself to any year it is asked about.
        step = timedelta(days=1 if n > 0 else -1)
        left = abs(n)
        while left:
            d += step
            if self.is_working_day(d):
                left -= 1
        return d


_calendar: _WorkingDays | None = None


def _working_days() -> _WorkingDays:
    global _calendar
    if _calendar is None:
        _calendar = _WorkingDays()
    return _calendar


def add_working_days(d: date, n: int) -> date:
    """The Nth working day after `d` (before it, for negative N), skipping weekends and England's bank holidays."""
    return (_calendar or _working_days()).add(d, n)


def is_working_day(d: date) -> bool:
    """Whether `d` is a working day in England: not a Saturday, Sunday or bank holiday."""
    return (_calendar or _working_days()).is_working_day(d)


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def add_months(d: date, n: int) -> date:
    """`d` plus N calendar months; a month that lacks the day ends on its last day (30 Nov + 3 = 28 Feb)."""
    y, m0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    last = _DAYS_IN_MONTH[m0]
    if m0 == 1 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        last = 29
    return date(y, m0 + 1, d.day if d.day <= last else last)


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
            period=period.text, date=_show(d), words=words, first=_show(first) if first else ""
        )
        _whys[key] = text
    return text


_MONTH_NAMES = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_shown: dict[date, str] = {}


def _show(d: date) -> str:
    """A date as a manager reads it: 16 Nov 2026. Cached: a caseload repeats the same few hundred dates."""
    s = _shown.get(d)
    if s is None:
        s = _shown[d] = f"{d.day} {_MONTH_NAMES[d.month]} {d.year}"
    return s


# ---------------------------------------------------------------- rules

_PERIOD = re.compile(r"^\s*(\d+)\s+(working days?|days?|weeks?|months?)\s*$")


def _memo(fn: Callable[[date], date]) -> Callable[[date], date]:
    """`fn` remembered per date: a caseload's clocks count from the same few hundred dates over and over."""
    known: dict[date, date] = {}
    get = known.get

    def after(d: date) -> date:
        due = get(d)
        if due is None:
            due = known[d] = fn(d)
        return due

    return after


class Period:
    """A length of time from a rule file: "6 weeks", "3 months", "20 working days"."""

    __slots__ = ("n", "unit", "text", "after")

    def __init__(self, text: str) -> None:
        match = _PERIOD.match(text) if isinstance(text, str) else None
        if match is None:
            raise RuleError(
                f"{text!r} is not a period: write a number and a unit, e.g. '6 weeks', '3 months', "
                "'10 working days'"
            )
        n, word = int(match[1]), match[2]
        unit = word.removesuffix("s")
        self.n = n
        self.unit = unit
        self.text = f"{n} {unit}" + ("" if n == 1 else "s")
        self.after: Callable[[date], date]
        if unit == "working day":
            self.after = _memo(lambda d: add_working_days(d, n))
        elif unit == "month":
            self.after = _memo(lambda d: add_months(d, n))
        else:
            delta = timedelta(days=n * 7 if unit == "week" else n)
            self.after = lambda d: d + delta

    def __repr__(self) -> str:
        return f"Period({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Period) and (self.n, self.unit) == (other.n, other.unit)

    def __hash__(self) -> int:
        return hash((self.n, self.unit))


@dataclass(frozen=True, slots=True)
class Rule:
    """One arm of a clock: how long after its starting date it falls due, and who says so."""

    period: Period
    source: str


@dataclass(frozen=True, slots=True)
class WeeklyThenRule:
    """A reg 28(3)/(4) arrangement: visits weekly until the first review, then at a fixed interval."""

    until_first_review: Period
    then: Period
    source: str


_SIMPLE_CLOCKS = (
    "initial_conference",
    "cp_visit",
    "cin_visit",
    "cin_review",
    "case_managed_review",
    "assessment",
)
_ARMED_CLOCKS = {
    "cic_visit": (
        "placement_start",
        "first_year",
        "long_term",
        "after_first_year",
        "child_agreed_less_frequent",
    ),
    "cic_review": ("first", "second", "subsequent"),
    "cp_review": ("first", "subsequent"),
}


class RuleSet:
    """The rules in force: every clock's periods and sources, plus the due-soon and late write-up windows."""

    def __init__(self, data: Mapping[str, Any], origin: str = "rules") -> None:
        self.origin = origin
        self.data = data
        try:
            settings = data["settings"]
            self.due_soon = Period(settings["due_soon"])
            self.late_write_up = Period(settings["late_write_up"])
            self.late_write_up_source = str(settings.get("late_write_up_source", ""))
            self.simple: dict[str, Rule] = {name: self._rule(data[name]) for name in _SIMPLE_CLOCKS}
            self.arms: dict[str, dict[str, Rule]] = {
                clock: {arm: self._rule(data[clock][arm]) for arm in arms}
                for clock, arms in _ARMED_CLOCKS.items()
            }
            self.arrangements: dict[str, WeeklyThenRule] = {
                name: WeeklyThenRule(
                    Period(data["cic_visit"][name]["until_first_review"]),
                    Period(data["cic_visit"][name]["then"]),
                    str(data["cic_visit"][name]["source"]),
                )
                for name in ARRANGEMENTS
                if name not in ("standard", "care_order_with_parent")
            }
            order = data["cic_visit"]["care_order_with_parent"]
            self.care_order_with_parent = (Rule(Period(order["first"]), str(order["source"])),
                                           Rule(Period(order["then"]), str(order["source"])))
        except KeyError as missing:
            raise RuleError(f"{origin}: the rule set has no {missing}") from None
        except RuleError as bad:
            raise RuleError(f"{origin}: {bad}") from None

    @staticmethod
    def _rule(table: Mapping[str, Any]) -> Rule:
        return Rule(Period(table["period"]), str(table["source"]))

    def __repr__(self) -> str:
        return f"RuleSet({self.origin!r})"


def _merge(base: dict[str, Any], override: Mapping[str, Any], where: str, origin: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        name = f"{where}.{key}" if where else key
        if key not in base:
            raise RuleError(f"{origin}: unknown rule '{name}' (the defaults in rules.toml have no such key)")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise RuleError(f"{origin}: '{name}' should be a table")
            merged[key] = _merge(base[key], value, name, origin)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise RuleError(f"cannot read the rule file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"the rule file {path} is not valid TOML: {e}") from None


_loaded: dict[tuple[str, int], RuleSet] = {}


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rule set: storage/rules.toml, with an authority's file merged over it.

    The authority's file is `path` or, when that is None, the file `SEEN_RULES` names (if set).
    Merging is table by table, key by key: the file need only hold what it changes, and a key the
    defaults lack is an error. Results are cached per file and modification time.
    """
    if path is None:
        path = os.environ.get("SEEN_RULES") or None
    override = Path(path) if path is not None else None
    key = (str(override), override.stat().st_mtime_ns if override is not None and override.exists() else 0)
    rules = _loaded.get(key)
    if rules is None:
        data = _read_toml(DEFAULT_RULES_PATH)
        origin = str(DEFAULT_RULES_PATH)
        if override is not None and override.resolve() != DEFAULT_RULES_PATH.resolve():
            data = _merge(data, _read_toml(override), "", str(override))
            origin = str(override)
        rules = _loaded[key] = RuleSet(data, origin)
    return rules


# ---------------------------------------------------------------- the clocks


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
}


def _check_needs(case: Case) -> None:
    """Raise CaseError if the case lacks a date one of its clocks counts from."""
    c = case.category
    if c == "cic":
        if case.looked_after_since is None:
            raise _missing(case, "looked_after_since")
        if not case.placements:
            raise _missing(case, "placements")
    elif c == "cp":
        if case.initial_conference is None and case.strategy_discussion is None:
            raise _missing(case, "strategy_discussion")
    elif c == "cin":
        if case.cin_plan_start is None:
            raise _missing(case, "cin_plan_start")
    elif c == "case_managed":
        if case.case_managed_since is None:
            raise _missing(case, "case_managed_since")
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


def _current_placement(placements: tuple[PlacementFacts, ...], on: date) -> PlacementFacts | None:
    """The placement the child is in on `on`: the latest begun that has not ended, else the latest begun."""
    current = latest = None
    for p in placements:
        if p.start <= on:
            if latest is None or p.start >= latest.start:
                latest = p
            if (p.end is None or p.end > on) and (current is None or p.start >= current.start):
                current = p
    return current or latest


_first_anniversary = _memo(lambda start: add_months(start, 12))

_ARRANGEMENT_WORDS = {
    "parent_pending_assessment": "placed with a parent before the assessment is complete",
    "interim_care_order_with_parent": "interim care order, living with a parent",
    "connected_person_temporary": "placed with a connected person under temporary approval",
    "care_order_with_parent": "care order, living with a parent",
}


def _cic_visit(case: Case, day: _Day, rules: RuleSet) -> Clock | None:
    on = day.on
    if not case.placements:
        raise _missing(case, "placements")
    placement = _current_placement(case.placements, on)
    if placement is None:  # no placement has begun yet: nothing to time a visit from
        return None
    start = placement.start
    arms = rules.arms["cic_visit"]
    last = _last_seen_visit(case.visits, start, on)
    arrangement = placement.arrangement
    if arrangement == "standard":
        if last is None:
            rule = arms["placement_start"]
            due = rule.period.after(start)
            why = _why(
                rule.period, "{period} after the placement began on {date}, with no visit since", start
            )
        elif last < _first_anniversary(start):
            rule = arms["first_year"]
            due = rule.period.after(last)
            why = _why(
                rule.period, "{period} after the last visit on {date}, in the placement's first year", last
            )
        elif placement.long_term and placement.child_agreed_less_frequent:
            rule = arms["child_agreed_less_frequent"]
            due = rule.period.after(last)
            why = _why(
                rule.period,
                "{period} after the last visit on {date}: a long-term placement past its first year, "
                "and the child agreed to be visited less often",
                last,
            )
        elif placement.long_term:
            rule = arms["long_term"]
            due = rule.period.after(last)
            why = _why(
                rule.period,
                "{period} after the last visit on {date}: past the placement's first year, "
                "and it is intended to last until 18",
                last,
            )
        else:
            rule = arms["after_first_year"]
            due = rule.period.after(last)
            why = _why(
                rule.period, "{period} after the last visit on {date}, past the placement's first year", last
            )
        return Clock(case.id, "cic_visit", due, day.status(due), why, rule.source)
    if arrangement == "care_order_with_parent":
        # reg 28(5): within a week of the care order being made, then at least every six weeks, with no
        # first-year or long-term arm. The placement starts on the day the order was made.
        first, then = rules.care_order_with_parent
        if last is None:
            due = first.period.after(start)
            why = _why(first.period, "{period} after the care order was made on {date}, with no visit since "
                       "(care order, living with a parent)", start)
        else:
            due = then.period.after(last)
            why = _why(then.period, "{period} after the last visit on {date} (care order, living with a parent)",
                       last)
        return Clock(case.id, "cic_visit", due, day.status(due), why, first.source)
    weekly = rules.arrangements.get(arrangement)
    if weekly is None:
        raise CaseError(
            case.id,
            "placements",
            f"unknown arrangement {arrangement!r}: use one of {', '.join(ARRANGEMENTS)}",
        )
    words = _ARRANGEMENT_WORDS[arrangement]
    first_review = _first_review(case.reviews, "cic_review", start, on)
    if last is None:
        period = weekly.until_first_review
        due = period.after(start)
        why = _why(
            period,
            "{period} after the placement began on {date}, with no visit since ({words})",
            start,
            words,
        )
    elif first_review is None:
        period = weekly.until_first_review
        due = period.after(last)
        why = _why(
            period, "{period} after the last visit on {date}, until the first review ({words})", last, words
        )
    else:
        period = weekly.then
        due = period.after(last)
        why = _why(
            period,
            "{period} after the last visit on {date}, since the first review on {first} ({words})",
            last,
            words,
            first_review,
        )
    return Clock(case.id, "cic_visit", due, day.status(due), why, weekly.source)


def _cic_review(case: Case, day: _Day, rules: RuleSet) -> Clock:
    since = case.looked_after_since
    if since is None:
        raise _missing(case, "looked_after_since")
    arms = rules.arms["cic_review"]
    last, more = _last_reviews(case.reviews, "cic_review", since, day.on)
    if last is None:
        rule = arms["first"]
        due = rule.period.after(since)
        why = _why(rule.period, "{period} after becoming looked after on {date}", since)
    elif not more:
        rule = arms["second"]
        due = rule.period.after(last)
        why = _why(rule.period, "{period} after the first review on {date}", last)
    else:
        rule = arms["subsequent"]
        due = rule.period.after(last)
        why = _why(rule.period, "{period} after the last review on {date}", last)
    return Clock(case.id, "cic_review", due, day.status(due), why, rule.source)


def _cp(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    on = day.on
    conference = case.initial_conference
    if conference is None or conference > on:
        strategy = case.strategy_discussion
        if strategy is None:
            raise _missing(case, "strategy_discussion")
        rule = rules.simple["initial_conference"]
        due = rule.period.after(strategy)
        why = _why(rule.period, "{period} after the strategy discussion on {date}", strategy)
        out.append(Clock(case.id, "initial_conference", due, day.status(due), why, rule.source))
        return
    rule = rules.simple["cp_visit"]
    last = _last_seen_visit(case.visits, conference, on)
    if last is None:
        due = rule.period.after(conference)
        why = _why(
            rule.period, "{period} after the initial conference on {date}, with no visit since", conference
        )
    else:
        due = rule.period.after(last)
        why = _why(rule.period, "{period} after the last visit on {date}", last)
    out.append(Clock(case.id, "cp_visit", due, day.status(due), why, rule.source))
    arms = rules.arms["cp_review"]
    last_review, _ = _last_reviews(case.reviews, "cp_review", conference, on)
    if last_review is None:
        rule = arms["first"]
        due = rule.period.after(conference)
        why = _why(rule.period, "{period} after the initial conference on {date}", conference)
    else:
        rule = arms["subsequent"]
        due = rule.period.after(last_review)
        why = _why(rule.period, "{period} after the last review conference on {date}", last_review)
    out.append(Clock(case.id, "cp_review", due, day.status(due), why, rule.source))


def _cin(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    start = case.cin_plan_start
    if start is None:
        raise _missing(case, "cin_plan_start")
    on = day.on
    rule = rules.simple["cin_visit"]
    last = _last_seen_visit(case.visits, start, on)
    if last is None:
        due = rule.period.after(start)
        why = _why(
            rule.period, "{period} after the child in need plan started on {date}, with no visit since", start
        )
    else:
        due = rule.period.after(last)
        why = _why(rule.period, "{period} after the last visit on {date}", last)
    out.append(Clock(case.id, "cin_visit", due, day.status(due), why, rule.source))
    rule = rules.simple["cin_review"]
    last_review, _ = _last_reviews(case.reviews, "cin_review", start, on)
    if last_review is None:
        due = rule.period.after(start)
        why = _why(rule.period, "{period} after the child in need plan started on {date}", start)
    else:
        due = rule.period.after(last_review)
        why = _why(rule.period, "{period} after the last child in need review on {date}", last_review)
    out.append(Clock(case.id, "cin_review", due, day.status(due), why, rule.source))


def _case_managed(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    since = case.case_managed_since
    if since is None:
        raise _missing(case, "case_managed_since")
    rule = rules.simple["case_managed_review"]
    last, _ = _last_reviews(case.reviews, "case_managed_review", since, day.on)
    if last is None:
        due = rule.period.after(since)
        why = _why(rule.period, "{period} after the case became case managed on {date}", since)
    else:
        due = rule.period.after(last)
        why = _why(rule.period, "{period} after the last care plan review on {date}", last)
    out.append(Clock(case.id, "case_managed_review", due, day.status(due), why, rule.source))


def _clocks(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    category = case.category
    if category == "cic":
        clock = _cic_visit(case, day, rules)
        if clock is not None:
            out.append(clock)
        out.append(_cic_review(case, day, rules))
    elif category == "cp":
        _cp(case, day, rules, out)
    elif category == "cin":
        _cin(case, day, rules, out)
    elif category == "case_managed":
        _case_managed(case, day, rules, out)
    else:
        _check_needs(case)  # raises the unknown-category error
    referral = case.referral
    if referral is not None and referral <= day.on:
        done = case.assessment_completed
        if done is None or done > day.on:
            rule = rules.simple["assessment"]
            due = rule.period.after(referral)
            why = _why(
                rule.period, "{period} after the referral on {date}, with no assessment completed", referral
            )
            out.append(Clock(case.id, "assessment", due, day.status(due), why, rule.source))


def _resolve(rules: RuleSet | None) -> RuleSet:
    return rules if rules is not None else load_rules()


def clocks_for(case: Case, on: date, rules: RuleSet | None = None) -> list[Clock]:
    """Every clock that applies to one child on the date `on`, in the order of CLOCKS."""
    rules = _resolve(rules)
    out: list[Clock] = []
    _clocks(case, _Day(on, rules), rules, out)
    return out


def clocks_for_all(cases: Iterable[Case], on: date, rules: RuleSet | None = None) -> list[Clock]:
    """Every clock for every child on the date `on`, worst first."""
    rules = _resolve(rules)
    day = _Day(on, rules)
    out: list[Clock] = []
    for case in cases:
        _clocks(case, day, rules, out)
    return _by_due(out)


UNWORKABLE = "Cannot work out what is due"


def clocks_and_problems(cases: Iterable[Case], on: date, rules: RuleSet | None = None
                        ) -> tuple[list[Clock], dict[str, str]]:
    """`clocks_for_all`, surviving children whose clocks cannot be worked out: every clock of the others,
    worst first, and for each child that could not be worked out (by id) the reason, to be shown and fixed.

    One child's record missing a date its clocks count from must not stop alerts, caseloads and dashboards
    for everyone else (records arrive from devices and imports, and a bad one is set aside, not fatal).
    """
    rules = _resolve(rules)
    day = _Day(on, rules)
    out: list[Clock] = []
    problems: dict[str, str] = {}
    for case in cases:
        mine: list[Clock] = []
        try:
            _clocks(case, day, rules, mine)
        except CaseError as e:
            problems[case.id] = e.message
            continue
        except OverflowError:  # a date so far ahead that the calendar ends before its clock would
            problems[case.id] = "a date on the child's record is too far in the future to time anything from"
            continue
        out.extend(mine)
    return _by_due(out), problems


def _by_due(clocks: list[Clock]) -> list[Clock]:
    """Clocks in due-date order, ties in the order given. Computed for one day, that is worst first.

    A bucket per due date, then the few hundred dates sorted: linear in the number of clocks.
    """
    buckets: dict[date, list[Clock]] = {}
    for clock in clocks:
        bucket = buckets.get(clock.due)
        if bucket is None:
            buckets[clock.due] = [clock]
        else:
            bucket.append(clock)
    out: list[Clock] = []
    for due in sorted(buckets):
        out.extend(buckets[due])
    return out


_STATUS_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
_CLOCK_RANK = {c: i for i, c in enumerate(CLOCKS)}


def worst_first(clocks: Iterable[Clock]) -> list[Clock]:
    """Clocks in the order a manager wants them: overdue first, then by due date, then by child."""
    return sorted(clocks, key=lambda c: (_STATUS_RANK.get(c.status, 9), c.due, c.child, c.clock))


def is_late_write_up(visit_date: date, written_up: date, rules: RuleSet | None = None) -> bool:
    """Whether a visit was written up late: more than the rule's working days after it happened."""
    if isinstance(visit_date, datetime):
        visit_date = visit_date.date()
    if isinstance(written_up, datetime):
        written_up = written_up.date()
    return written_up > _resolve(rules).late_write_up.after(visit_date)


# ---------------------------------------------------------------- cases from JSON

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CASE_DATES = (
    "looked_after_since",
    "strategy_discussion",
    "initial_conference",
    "cin_plan_start",
    "case_managed_since",
    "referral",
    "assessment_completed",
)


def _date(case_id: str, field: str, value: object, required: bool = False) -> date | None:
    if value is None:
        if required:
            raise CaseError(case_id, field, "a date is needed here (YYYY-MM-DD)")
        return None
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise CaseError(case_id, field, f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-02")


def _flag(case_id: str, field: str, value: object, default: bool | None) -> bool | None:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CaseError(case_id, field, f"{value!r} should be true or false")
    return value


def _items(case_id: str, field: str, value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise CaseError(case_id, field, "should be a list of objects")
    return value


def case_from_json(obj: dict[str, Any]) -> Case:
    """A Case from its JSON form (as `seen due --cases` reads), checked: raises CaseError naming the field."""
    if not isinstance(obj, dict):
        raise CaseError("?", "", "a case must be a JSON object")
    raw_id = obj.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
        raise CaseError("?", "id", "every case needs an id")
    cid = str(raw_id)
    category = obj.get("category")
    if category not in CATEGORIES:
        raise CaseError(cid, "category", f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
    dates = {name: _date(cid, name, obj.get(name)) for name in _CASE_DATES}
    placements = []
    for i, p in enumerate(_items(cid, "placements", obj.get("placements"))):
        at = f"placements[{i}]"
        start = _date(cid, f"{at}.start", p.get("start"), required=True)
        end = _date(cid, f"{at}.end", p.get("end"))
        assert start is not None
        if end is not None and end < start:
            raise CaseError(cid, f"{at}.end", f"the placement ends ({end}) before it starts ({start})")
        arrangement = p.get("arrangement") or "standard"
        if arrangement not in ARRANGEMENTS:
            raise CaseError(
                cid,
                f"{at}.arrangement",
                f"unknown arrangement {arrangement!r}: use one of {', '.join(ARRANGEMENTS)}",
            )
        placements.append(
            PlacementFacts(
                start=start,
                end=end,
                long_term=bool(_flag(cid, f"{at}.long_term", p.get("long_term"), False)),
                arrangement=arrangement,
                child_agreed_less_frequent=bool(
                    _flag(cid, f"{at}.child_agreed_less_frequent", p.get("child_agreed_less_frequent"), False)
                ),
            )
        )
    visits = []
    for i, v in enumerate(_items(cid, "visits", obj.get("visits"))):
        at = f"visits[{i}]"
        when = _date(cid, f"{at}.date", v.get("date"), required=True)
        assert when is not None
        seen = _flag(cid, f"{at}.seen", v.get("seen"), None)
        if seen is None:
            raise CaseError(cid, f"{at}.seen", "say whether the child was seen (true or false)")
        visits.append(VisitFacts(when, seen, _flag(cid, f"{at}.seen_alone", v.get("seen_alone"), None)))
    reviews = []
    for i, r in enumerate(_items(cid, "reviews", obj.get("reviews"))):
        at = f"reviews[{i}]"
        kind = r.get("kind")
        if kind not in REVIEW_KINDS:
            raise CaseError(
                cid, f"{at}.kind", f"unknown review kind {kind!r}: use one of {', '.join(REVIEW_KINDS)}"
            )
        when = _date(cid, f"{at}.date", r.get("date"), required=True)
        assert when is not None
        reviews.append(ReviewFacts(kind, when))
    case = Case(
        id=cid,
        category=category,
        placements=tuple(placements),
        visits=tuple(visits),
        reviews=tuple(reviews),
        **dates,
    )
    _check_needs(case)
    return case


# ---------------------------------------------------------------- seen due

_STATUS_WORDS = {
    "overdue": "OVERDUE",
    "due_today": "due today",
    "due_soon": "due soon",
    "on_track": "on track",
}


def format_table(clocks: Iterable[Clock]) -> str:
    """A readable table of clocks, worst first: child, what, due date, status, and why."""
    rows = [
        (
            c.child,
            c.clock.replace("_", " "),
            f"{c.due:%a} {_show(c.due)}",
            _STATUS_WORDS.get(c.status, c.status),
            c.rule,
        )
        for c in worst_first(clocks)
    ]
    if not rows:
        return "Nothing is due: no clocks apply to these children.\n"
    header = ("child", "clock", "due", "status", "why")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
    return "\n".join(lines) + "\n"


def _on_date(text: str) -> date:
    try:
        if not _ISO_DATE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write it as YYYY-MM-DD") from None


def _read_cases(path: str) -> list[Case]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise _Usage(f"cannot read {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise _Usage(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise _Usage(f"{path} should hold a JSON list of cases")
    cases = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise _Usage(f"case number {i + 1} in {path} is not a JSON object")
        cases.append(case_from_json(obj))
    return cases


class _Usage(Exception):
    pass


def due_command(argv: list[str], load_store_cases: Callable[[], list[Case]] | None = None) -> int:
    """`seen due [--cases FILE.json] [--on YYYY-MM-DD] [--json] [--rules FILE]`: print what is due.

    Returns the exit status: 0; 1 when some children's clocks could not be worked out (each named on stderr
    with the reason; every other child's are printed); or 2 when the input or the rules are wrong (the
    reason on stderr, nothing on stdout).
    """
    parser = argparse.ArgumentParser(
        prog="seen due", description="Which visits and reviews are due, when, and which rule says so."
    )
    parser.add_argument("--cases", metavar="FILE.json", help="a JSON list of cases (default: the store)")
    parser.add_argument(
        "--on",
        type=_on_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the day to work out for (default: today)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--rules", metavar="FILE.toml", help="an authority's rule file (default: $SEEN_RULES)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    on = args.on or date.today()
    try:
        rules = load_rules(args.rules)
        if args.cases:
            cases = _read_cases(args.cases)
        elif load_store_cases is not None:
            cases = load_store_cases()
        else:
            raise _Usage("no cases to read: pass --cases FILE.json (a JSON list of cases)")
        clocks, problems = clocks_and_problems(cases, on, rules)
    except (CaseError, RuleError, _Usage) as e:
        print(f"seen due: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps([c.to_json() for c in clocks], indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_table(clocks))
    for child_id, reason in problems.items():
        print(f"seen due: {UNWORKABLE.lower()} for child {child_id}: {reason}", file=sys.stderr)
    return 1 if problems else 0

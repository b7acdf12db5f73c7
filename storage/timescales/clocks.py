"""The clocks: for each child, which visits and reviews are due, when, and which rule says so.

The engine the package's docstring describes; the dates it counts with come from `calendar`, the periods
and citations from `rules`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from storage.timescales.calendar import add_months
from storage.timescales.counting import (
    NEEDS,
    _Day,
    _first_review,
    _last_reviews,
    _last_seen_visit,
    _missing,
    _review_clock,
    _why,
    check_needs,
)
from storage.timescales.duties import _care_leaver, _health, _return_interviews, is_missing
from storage.timescales.facts import (
    ARRANGEMENTS,
    CLOCKS,
    STATUS_ORDER,
    Case,
    CaseError,
    Clock,
    PlacementFacts,
)
from storage.timescales.rules import Period, Rule, RuleError, RuleSet, load_rules, memo, plan_period

__all__ = ["NEEDS", "UNWORKABLE", "check_needs", "clocks_and_problems", "clocks_for", "clocks_for_all",
           "is_late_write_up", "is_missing", "worst_first"]

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


_first_anniversary = memo(lambda start: add_months(start, 12))

_ARRANGEMENT_WORDS = {
    "parent_pending_assessment": "placed with a parent before the assessment is complete",
    "interim_care_order_with_parent": "interim care order, living with a parent",
    "connected_person_temporary": "placed with a connected person under temporary approval",
    "care_order_with_parent": "care order, living with a parent",
}


def _plan(case: Case) -> Period | None:
    """The visit period the child's plan sets, or None."""
    text = case.plan_visit_every
    if not text:
        return None
    try:
        return plan_period(text)
    except RuleError as e:
        raise CaseError(case.id, "plan_visit_every", str(e)) from None


def _cic_visit(case: Case, day: _Day, rules: RuleSet) -> Clock | None:
    """The reg 28 visit clock, or the plan's when the plan makes the visit due sooner (it never makes it later)."""
    clock = _cic_statutory_visit(case, day, rules)
    plan = _plan(case)
    if clock is None or plan is None:
        return clock
    placement = _current_placement(case.placements, day.on)
    assert placement is not None  # the statutory clock found one
    last = _last_seen_visit(case.visits, placement.start, day.on)
    if last is None:
        due = plan.after(placement.start)
        why = _why(plan, "{period} after the placement began on {date}, with no visit since, as the child's "
                   "plan sets (sooner than reg 28)", placement.start)
    else:
        due = plan.after(last)
        why = _why(plan, "{period} after the last visit on {date}, as the child's plan sets (sooner than reg 28)",
                   last)
    if due >= clock.due:
        return clock
    return Clock(case.id, "cic_visit", due, day.status(due), why, rules.plan_visit_source)


def _cic_statutory_visit(case: Case, day: _Day, rules: RuleSet) -> Clock | None:
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
    _visit_clock(case, day, rules.simple["cp_visit"], "cp_visit", conference,
                 "{period} after the initial conference on {date}, with no visit since", out, rules.plan_visit_source)
    arms = rules.arms["cp_review"]
    _review_clock(case, day, (arms["first"], arms["subsequent"]), "cp_review", conference,
                  "{period} after the initial conference on {date}",
                  "{period} after the last review conference on {date}", out)


def _cin(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    start = case.cin_plan_start
    if start is None:
        raise _missing(case, "cin_plan_start")
    _visit_clock(case, day, rules.simple["cin_visit"], "cin_visit", start,
                 "{period} after the child in need plan started on {date}, with no visit since", out,
                 rules.plan_visit_source)
    rule = rules.simple["cin_review"]
    _review_clock(case, day, (rule, rule), "cin_review", start,
                  "{period} after the child in need plan started on {date}",
                  "{period} after the last child in need review on {date}", out)


def _visit_clock(case: Case, day: _Day, rule: Rule, clock: str, since: date, first: str, out: list[Clock],
                 plan_source: str = "") -> None:
    """A CP, CiN or case-managed visit clock: from the last visit the child was seen, or from `since` (worded
    `first`). The child's plan, when it sets a period, replaces the rule's (`plan_source` then cites it)."""
    period, source, plan_words = rule.period, rule.source, ""
    plan = _plan(case)
    if plan is not None and plan_source:
        period, source, plan_words = plan, plan_source, ", as the child's plan sets"
    last = _last_seen_visit(case.visits, since, day.on)
    if last is None:
        due = period.after(since)
        why = _why(period, first + plan_words, since)
    else:
        due = period.after(last)
        why = _why(period, "{period} after the last visit on {date}" + plan_words, last)
    out.append(Clock(case.id, clock, due, day.status(due), why, source))


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
    if case.plan_visit_every:  # no visit clock unless the plan sets one
        _visit_clock(case, day, rule, "case_managed_visit", since,
                     "{period} after the case became case managed on {date}, with no visit since", out,
                     rules.plan_visit_source)


def _clocks(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    category = case.category
    if category == "cic":
        clock = _cic_visit(case, day, rules)
        if clock is not None:
            out.append(clock)
        out.append(_cic_review(case, day, rules))
        if case.health_assessments is not None:
            _health(case, day, rules, out)
    elif category == "cp":
        _cp(case, day, rules, out)
    elif category == "cin":
        _cin(case, day, rules, out)
    elif category == "case_managed":
        _case_managed(case, day, rules, out)
    elif category == "care_leaver":
        _care_leaver(case, day, rules, out)
    else:
        check_needs(case)  # raises the unknown-category error
    if case.missing_episodes:
        _return_interviews(case, day, rules, out)
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

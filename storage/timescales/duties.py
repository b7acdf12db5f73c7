"""The clocks of timescales part two that are not a category's visits or reviews: a care leaver's personal
adviser visits and pathway plan reviews, a child in care's health assessments, and return home interviews."""

from __future__ import annotations

from datetime import date

from storage.timescales.calendar import add_months
from storage.timescales.counting import _Day, _last_seen_visit, _missing, _review_clock, _why
from storage.timescales.facts import Case, Clock
from storage.timescales.rules import RuleSet


def _care_leaver(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    """The personal adviser's visits and the pathway plan's reviews, from when they became a care leaver."""
    since = case.care_leaver_since
    if since is None:
        raise _missing(case, "care_leaver_since")
    on = day.on
    interval, after_move = rules.arms["pa_visit"]["interval"], rules.arms["pa_visit"]["after_move"]
    last = _last_seen_visit(case.visits, since, on)
    start = last or since
    due = interval.period.after(start)
    if last is None:
        why = _why(interval.period, "{period} after becoming a care leaver on {date}, with no visit since", since)
    else:
        why = _why(interval.period, "{period} after the last visit on {date}", last)
    source = interval.source
    for moved in reversed(case.accommodation_moves):  # in date order: the latest move not after `on`
        if moved <= on:
            if moved >= since and (last is None or moved > last):
                by_move = after_move.period.after(moved)
                if by_move < due:
                    due, source = by_move, after_move.source
                    why = _why(after_move.period, "{period} after moving to new accommodation on {date}, "
                               "with no visit since", moved)
            break
    out.append(Clock(case.id, "pa_visit", due, day.status(due), why, source))
    rule = rules.simple["pathway_plan_review"]
    _review_clock(case, day, (rule, rule), "pathway_plan_review", since,
                  "{period} after becoming a care leaver on {date}",
                  "{period} after the last pathway plan review on {date}", out)


def _health(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    """A child in care's health assessments: the initial one for this period of care, then the reviews."""
    since = case.looked_after_since
    if since is None:
        raise _missing(case, "looked_after_since")
    on = day.on
    initial = latest = None
    for assessment in case.health_assessments or ():  # in date order
        if assessment.date > on:
            break
        if assessment.date >= since:
            latest = assessment
            if assessment.kind == "initial":
                initial = assessment
    if initial is None:
        rule = rules.simple["initial_health_assessment"]
        due = rule.period.after(since)
        why = _why(rule.period, "{period} after becoming looked after on {date}, with no initial health "
                   "assessment since", since)
        out.append(Clock(case.id, "initial_health_assessment", due, day.status(due), why, rule.source))
    if latest is None:
        return
    under_five = latest.under_five
    if under_five is None:
        born = case.date_of_birth
        if born is None:
            raise _missing(case, "date_of_birth")
        under_five = latest.date < add_months(born, 60)
    arms = rules.arms["review_health_assessment"]
    rule = arms["under_five"] if under_five else arms["five_and_over"]
    due = rule.period.after(latest.date)
    why = _why(rule.period, "{period} after the last health assessment on {date}, the child {words} then",
               latest.date, "under five" if under_five else "five or over")
    out.append(Clock(case.id, "review_health_assessment", due, day.status(due), why, rule.source))


def _return_interviews(case: Case, day: _Day, rules: RuleSet, out: list[Clock]) -> None:
    """One return home interview clock per missing episode that has ended with no interview offered or held."""
    on = day.on
    rule = rules.simple["return_home_interview"]
    for episode in case.missing_episodes:
        back = episode.end
        if back is None or back > on:
            continue  # still missing (as far as `on` knows): no interview clock yet
        interview = episode.return_interview
        if interview is not None and interview <= on:
            continue
        due = rule.period.after(back)
        why = _why(rule.period, "{period} after coming back from being missing on {date}, with no "
                   "return home interview since", back)
        out.append(Clock(case.id, "return_home_interview", due, day.status(due), why, rule.source))


def is_missing(case: Case, on: date) -> bool:
    """Whether the child is missing on `on`: an episode has begun and not ended by then."""
    return any(e.start <= on and (e.end is None or e.end > on) for e in case.missing_episodes)

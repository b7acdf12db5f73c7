"""The statutory timescales engine: every rule, the calendar arithmetic, statuses, and `seen due`."""

import json
import subprocess
import sys
import tomllib
from datetime import date, datetime, timedelta
from pathlib import Path

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.timescales import (
    DEFAULT_RULES_PATH,
    STATUS_ORDER,
    Case,
    CaseError,
    Clock,
    PlacementFacts,
    ReviewFacts,
    RuleError,
    VisitFacts,
    add_months,
    add_working_days,
    clocks_for,
    clocks_for_all,
    is_late_write_up,
    is_working_day,
    load_rules,
    worst_first,
)
from storage.timescales.due import case_from_json, due_command, format_table

ROOT = Path(__file__).resolve().parent.parent
D = date.fromisoformat

A1 = {
    "id": "A1",
    "category": "cic",
    "looked_after_since": "2026-03-02",
    "placements": [{"start": "2026-03-02", "end": None, "long_term": False}],
    "strategy_discussion": None,
    "initial_conference": None,
    "cin_plan_start": None,
    "case_managed_since": None,
    "referral": None,
    "assessment_completed": None,
    "visits": [{"date": "2026-03-06", "seen": True, "seen_alone": True}],
    "reviews": [{"kind": "cic_review", "date": "2026-03-27"}],
}
CP_WAITING = {"id": "P1", "category": "cp", "strategy_discussion": "2026-12-14"}


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch):
    monkeypatch.delenv("SEEN_RULES", raising=False)


def seen(*days: str) -> tuple[VisitFacts, ...]:
    return tuple(VisitFacts(D(d), True, True) for d in days)


def placed(start: str, end: str | None = None, **kw) -> PlacementFacts:
    return PlacementFacts(D(start), D(end) if end else None, **kw)


def in_care(placements=None, visits=(), reviews=(), since="2026-03-02") -> Case:
    return Case(
        "C1",
        "cic",
        looked_after_since=D(since),
        placements=tuple(placements or (placed(since),)),
        visits=tuple(visits),
        reviews=tuple(reviews),
    )


def the(case: Case, clock: str, on: str) -> Clock:
    found = [c for c in clocks_for(case, D(on)) if c.clock == clock]
    assert len(found) == 1, clocks_for(case, D(on))
    return found[0]


def due(case: Case, clock: str, on: str) -> str:
    return the(case, clock, on).due.isoformat()


# ---------------------------------------------------------------- the issue's examples


def test_issue_example_a1():
    clocks = clocks_for(case_from_json(A1), D("2026-05-01"))
    assert [(c.clock, c.due.isoformat(), c.status) for c in clocks] == [
        ("cic_visit", "2026-04-17", "overdue"),
        ("cic_review", "2026-06-27", "on_track"),
    ]
    visit, review = clocks
    assert visit.rule == "6 weeks after the last visit on 6 Mar 2026, in the placement's first year"
    assert visit.source == "Care Planning, Placement and Case Review (England) Regulations 2010, reg 28(2)(b)"
    assert review.rule == "3 months after the first review on 27 Mar 2026"
    assert "reg 33(2)" in review.source


def test_issue_example_initial_conference_skips_christmas_and_new_year():
    (clock,) = clocks_for(case_from_json(CP_WAITING), D("2026-12-15"))
    assert clock.clock == "initial_conference"
    assert clock.due == D("2027-01-07")
    assert clock.rule == "15 working days after the strategy discussion on 14 Dec 2026"
    assert "Working Together" in clock.source


# ---------------------------------------------------------------- working days


def test_working_days_skip_weekends():
    assert add_working_days(D("2026-05-15"), 1) == D("2026-05-18")  # Fri -> Mon
    assert add_working_days(D("2026-05-16"), 1) == D("2026-05-18")  # Sat -> Mon
    assert add_working_days(D("2026-05-18"), 5) == D("2026-05-26")  # Mon 25 May is a bank holiday
    assert add_working_days(D("2026-05-18"), 0) == D("2026-05-18")


def test_christmas_2027_substitute_days():
    # 25 Dec 2027 is a Saturday and 26 Dec a Sunday: Mon 27 and Tue 28 Dec are the bank holidays.
    assert not is_working_day(D("2027-12-27"))
    assert not is_working_day(D("2027-12-28"))
    assert is_working_day(D("2027-12-29"))
    assert add_working_days(D("2027-12-24"), 1) == D("2027-12-29")
    assert add_working_days(D("2027-12-23"), 2) == D("2027-12-29")


def test_new_year_substitute_and_one_off_bank_holidays():
    assert add_working_days(D("2021-12-31"), 1) == D("2022-01-04")  # Mon 3 Jan 2022 substitute day
    assert not is_working_day(D("2022-09-19"))  # the Queen's state funeral
    assert not is_working_day(D("2023-05-08"))  # the coronation
    assert add_working_days(D("2026-04-02"), 1) == D("2026-04-07")  # Good Friday, Easter Monday


def test_working_days_backwards():
    assert add_working_days(D("2027-12-29"), -1) == D("2027-12-24")
    assert add_working_days(D("2026-05-18"), -1) == D("2026-05-15")
    assert add_working_days(D("2026-05-17"), -1) == D("2026-05-15")  # from a Sunday


def test_working_days_outside_the_table_still_work():
    assert add_working_days(D("1999-06-04"), 1) == D("1999-06-07")
    assert add_working_days(D("2100-12-24"), 10) > D("2100-12-31")
    assert is_working_day(add_working_days(D("2100-12-24"), 10))


_ENGLAND = holidays.country_holidays("GB", subdiv="ENG")


def _step(d: date, n: int) -> date:
    step = timedelta(days=1 if n > 0 else -1)
    while n:
        d += step
        if d.weekday() < 5 and d not in _ENGLAND:
            n -= 1 if n > 0 else -1
    return d


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=date(2000, 3, 1), max_value=date(2100, 10, 1)), st.integers(-60, 60))
def test_working_day_table_agrees_with_stepping_a_day_at_a_time(d, n):
    assert add_working_days(d, n) == _step(d, n)


# ---------------------------------------------------------------- months


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-11-30", 3, "2027-02-28"),
        ("2027-08-31", 6, "2028-02-29"),  # a leap year
        ("2028-01-31", 1, "2028-02-29"),
        ("2029-01-31", 1, "2029-02-28"),
        ("2028-02-29", 12, "2029-02-28"),
        ("2100-01-31", 1, "2100-02-28"),  # 2100 is not a leap year
        ("2000-01-31", 1, "2000-02-29"),  # 2000 is
        ("2026-10-15", 3, "2027-01-15"),
        ("2026-03-31", -1, "2026-02-28"),
        ("2026-03-27", 3, "2026-06-27"),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(start, months, expected):
    assert add_months(D(start), months) == D(expected)


# ---------------------------------------------------------------- CiC visits (reg 28)


def test_first_visit_within_a_week_of_the_placement():
    clock = the(in_care(), "cic_visit", "2026-03-04")
    assert clock.due == D("2026-03-09")
    assert clock.rule == "1 week after the placement began on 2 Mar 2026, with no visit since"
    assert clock.source.endswith("reg 28(2)(a)")


def test_unseen_visits_do_not_count():
    visits = (*seen("2026-03-06"), VisitFacts(D("2026-04-10"), False, None))
    assert due(in_care(visits=visits), "cic_visit", "2026-04-11") == "2026-04-17"
    only_unseen = (VisitFacts(D("2026-03-06"), False, None),)
    assert due(in_care(visits=only_unseen), "cic_visit", "2026-03-07") == "2026-03-09"


def test_visits_counted_in_any_order():
    visits = seen("2026-04-10", "2026-03-06", "2026-03-20")
    assert due(in_care(visits=visits), "cic_visit", "2026-04-11") == "2026-05-22"


def test_a_new_placement_restarts_the_clock_and_earlier_visits_do_not_count():
    placements = (placed("2026-03-02", "2026-06-01"), placed("2026-06-01"))
    case = in_care(placements=placements, visits=seen("2026-05-29"))
    clock = the(case, "cic_visit", "2026-06-02")
    assert clock.due == D("2026-06-08")
    assert "placement began on 1 Jun 2026" in clock.rule
    # a visit on the day the new placement starts counts for it
    case = in_care(placements=placements, visits=seen("2026-05-29", "2026-06-01"))
    assert due(case, "cic_visit", "2026-06-02") == "2026-07-13"


def test_current_placement_is_the_open_one_else_the_latest():
    # listed out of order; the open one is current
    placements = (placed("2026-06-01"), placed("2026-03-02", "2026-06-01"))
    assert due(in_care(placements=placements), "cic_visit", "2026-06-02") == "2026-06-08"
    # every placement ended: the latest is used
    placements = (placed("2026-03-02", "2026-04-01"), placed("2026-04-01", "2026-05-01"))
    assert due(in_care(placements=placements), "cic_visit", "2026-05-02") == "2026-04-08"


def test_a_placement_that_has_not_begun_is_not_current_yet():
    placements = (placed("2026-03-02"), placed("2026-07-01"))
    assert due(in_care(placements=placements), "cic_visit", "2026-03-03") == "2026-03-09"


def test_first_anniversary_boundary_long_term():
    start = "2026-03-02"  # first anniversary 2 Mar 2027
    day_before = in_care([placed(start, long_term=True)], seen("2027-03-01"))
    clock = the(day_before, "cic_visit", "2027-03-02")
    assert clock.due == D("2027-04-12")  # 6 weeks: still the first year
    assert clock.source.endswith("reg 28(2)(b)")
    on_the_day = in_care([placed(start, long_term=True)], seen("2027-03-02"))
    clock = the(on_the_day, "cic_visit", "2027-03-03")
    assert clock.due == D("2027-06-02")  # 3 months: intended to last until 18
    assert clock.source.endswith("reg 28(2)(c)(i)")
    assert "intended to last until 18" in clock.rule


def test_after_the_first_year_not_long_term_stays_six_weekly():
    case = in_care([placed("2026-03-02")], seen("2027-03-02"))
    clock = the(case, "cic_visit", "2027-03-03")
    assert clock.due == D("2027-04-13")
    assert clock.source.endswith("reg 28(2)(c)(ii)")


def test_first_anniversary_of_a_leap_day_placement():
    # placed 29 Feb 2028: the first anniversary is 28 Feb 2029
    case = in_care([placed("2028-02-29", long_term=True)], seen("2029-02-27"), since="2028-02-29")
    assert due(case, "cic_visit", "2029-03-01") == "2029-04-10"
    case = in_care([placed("2028-02-29", long_term=True)], seen("2029-02-28"), since="2028-02-29")
    assert due(case, "cic_visit", "2029-03-01") == "2029-05-28"


def test_child_agreed_less_frequent_visits_in_a_long_term_placement():
    agreed = placed("2026-03-02", long_term=True, child_agreed_less_frequent=True)
    clock = the(in_care([agreed], seen("2027-05-31")), "cic_visit", "2027-06-01")
    assert clock.due == D("2027-11-30")
    assert "reg 28(3A)" in clock.source
    # in the first year the agreement does not apply
    assert due(in_care([agreed], seen("2026-05-31")), "cic_visit", "2026-06-01") == "2026-07-12"
    # without a long-term placement it does not apply either
    not_long = placed("2026-03-02", child_agreed_less_frequent=True)
    assert due(in_care([not_long], seen("2027-05-31")), "cic_visit", "2027-06-01") == "2027-07-12"


def test_placed_with_parent_before_assessment_weekly_until_first_review():
    p = placed("2026-03-02", arrangement="parent_pending_assessment")
    clock = the(in_care([p], seen("2026-03-05")), "cic_visit", "2026-03-06")
    assert clock.due == D("2026-03-12")
    assert clock.source.endswith("reg 28(3)")
    assert "until the first review" in clock.rule
    after = in_care([p], seen("2026-03-05", "2026-03-31"), [ReviewFacts("cic_review", D("2026-03-27"))])
    clock = the(after, "cic_visit", "2026-04-01")
    assert clock.due == D("2026-05-12")  # 6 weeks once the first review is held
    assert "first review on 27 Mar 2026" in clock.rule


@pytest.mark.parametrize("arrangement", ["interim_care_order_with_parent", "connected_person_temporary"])
def test_reg_28_4_weekly_then_four_weekly(arrangement):
    p = placed("2026-03-02", arrangement=arrangement)
    assert due(in_care([p], seen("2026-03-05")), "cic_visit", "2026-03-06") == "2026-03-12"
    assert due(in_care([p]), "cic_visit", "2026-03-03") == "2026-03-09"
    review = ReviewFacts("cic_review", D("2026-03-27"))
    clock = the(in_care([p], seen("2026-03-31"), [review]), "cic_visit", "2026-04-01")
    assert clock.due == D("2026-04-28")
    assert clock.source.endswith("reg 28(4)")


def test_reg_28_5_care_order_with_parent_within_a_week_then_six_weekly():
    # The care order was made on Monday 2 March 2026 while the child lived at home.
    p = placed("2026-03-02", arrangement="care_order_with_parent")
    clock = the(in_care([p]), "cic_visit", "2026-03-03")
    assert clock.due == D("2026-03-09")
    assert clock.source.endswith("reg 28(5)")
    assert "after the care order was made on 2 Mar 2026" in clock.rule
    clock = the(in_care([p], seen("2026-03-05")), "cic_visit", "2026-03-06")
    assert clock.due == D("2026-04-16")  # six weeks, not weekly until a review
    # No first-year or long-term arm: six weeks still applies years later, long-term or not.
    long_term = placed("2026-03-02", long_term=True, arrangement="care_order_with_parent")
    assert due(in_care([long_term], seen("2027-06-01")), "cic_visit", "2027-06-02") == "2027-07-13"
    # A visit before the order was made does not count towards it.
    assert due(in_care([p], seen("2026-02-27")), "cic_visit", "2026-03-02") == "2026-03-09"


def test_a_rule_file_may_change_the_care_order_with_parent_interval(tmp_path):
    override = tmp_path / "rules.toml"
    override.write_text('[cic_visit.care_order_with_parent]\nthen = "4 weeks"\n'
                        'source = "Anytown procedures, 4.1"\n')
    rules = load_rules(override)
    p = placed("2026-03-02", arrangement="care_order_with_parent")
    cic = next(c for c in clocks_for(in_care([p], seen("2026-03-05")), D("2026-03-06"), rules)
               if c.clock == "cic_visit")
    assert cic.due == D("2026-04-02")
    assert cic.source == "Anytown procedures, 4.1"


def test_a_review_before_the_placement_began_is_not_its_first_review():
    p = placed("2026-04-01", arrangement="interim_care_order_with_parent")
    case = in_care([p], seen("2026-04-20"), [ReviewFacts("cic_review", D("2026-03-27"))])
    assert due(case, "cic_visit", "2026-04-21") == "2026-04-27"


def test_a_visit_after_the_day_asked_about_is_ignored():
    case = in_care(visits=seen("2026-03-06", "2026-05-01"))
    assert due(case, "cic_visit", "2026-04-01") == "2026-04-17"
    assert due(case, "cic_visit", "2026-05-01") == "2026-06-12"


# ---------------------------------------------------------------- CiC reviews (reg 33)


def test_cic_reviews():
    first = the(in_care(), "cic_review", "2026-03-03")
    assert first.due == D("2026-03-30")  # 20 working days; Good Friday and Easter Monday fall after
    assert first.rule == "20 working days after becoming looked after on 2 Mar 2026"
    assert first.source.endswith("reg 33(1)")
    reviews = [ReviewFacts("cic_review", D("2026-03-27"))]
    assert due(in_care(reviews=reviews), "cic_review", "2026-04-01") == "2026-06-27"
    reviews.append(ReviewFacts("cic_review", D("2026-06-20")))
    third = the(in_care(reviews=reviews), "cic_review", "2026-07-01")
    assert third.due == D("2026-12-20")
    assert third.rule == "6 months after the last review on 20 Jun 2026"


def test_cic_reviews_before_becoming_looked_after_again_are_ignored():
    reviews = [ReviewFacts("cic_review", D("2025-01-10")), ReviewFacts("cic_review", D("2025-04-10"))]
    case = in_care(reviews=reviews, since="2026-03-02")
    assert due(case, "cic_review", "2026-03-03") == "2026-03-30"


def test_other_kinds_of_review_do_not_count_as_cic_reviews():
    reviews = [ReviewFacts("health_assessment", D("2026-03-10")), ReviewFacts("pep_review", D("2026-03-11"))]
    assert due(in_care(reviews=reviews), "cic_review", "2026-03-12") == "2026-03-30"


# ---------------------------------------------------------------- child protection


def cp(conference="2026-01-12", visits=(), reviews=(), strategy="2025-12-19") -> Case:
    return Case(
        "P1",
        "cp",
        strategy_discussion=D(strategy) if strategy else None,
        initial_conference=D(conference) if conference else None,
        visits=tuple(visits),
        reviews=tuple(reviews),
    )


def test_after_the_initial_conference():
    clocks = clocks_for(cp(), D("2026-01-13"))
    assert [c.clock for c in clocks] == ["cp_visit", "cp_review"]
    visit, review = clocks
    assert visit.due == D("2026-01-26")  # 10 working days after Mon 12 Jan
    assert visit.rule == "10 working days after the initial conference on 12 Jan 2026, with no visit since"
    assert review.due == D("2026-04-12")
    assert review.rule == "3 months after the initial conference on 12 Jan 2026"


def test_cp_visits_count_from_the_last_seen_visit_after_the_conference():
    visits = (*seen("2026-01-05", "2026-01-20"), VisitFacts(D("2026-01-27"), False, None))
    clock = the(cp(visits=visits), "cp_visit", "2026-01-28")
    assert clock.due == D("2026-02-03")
    assert clock.rule == "10 working days after the last visit on 20 Jan 2026"
    # a visit before the conference does not count
    assert due(cp(visits=seen("2026-01-09")), "cp_visit", "2026-01-13") == "2026-01-26"


def test_cp_review_conferences():
    reviews = [ReviewFacts("cp_review", D("2026-04-10"))]
    clock = the(cp(reviews=reviews), "cp_review", "2026-04-11")
    assert clock.due == D("2026-10-10")
    assert clock.rule == "6 months after the last review conference on 10 Apr 2026"
    older = [ReviewFacts("cp_review", D("2025-06-01"))]  # from an earlier plan
    assert due(cp(reviews=older), "cp_review", "2026-01-13") == "2026-04-12"


def test_a_conference_after_the_day_asked_about_has_not_happened_yet():
    case = cp(conference="2026-01-12", strategy="2025-12-22")
    (clock,) = clocks_for(case, D("2026-01-05"))
    assert clock.clock == "initial_conference"
    assert clock.due == D("2026-01-15")  # Christmas, Boxing Day and New Year skipped


def test_cp_visit_interval_is_local_policy(tmp_path, monkeypatch):
    rules = tmp_path / "anytown.toml"
    rules.write_text('[cp_visit]\nperiod = "5 working days"\nsource = "Anytown procedures 3.2"\n')
    monkeypatch.setenv("SEEN_RULES", str(rules))
    clock = the(cp(), "cp_visit", "2026-01-13")
    assert clock.due == D("2026-01-19")
    assert clock.source == "Anytown procedures 3.2"
    assert clock.rule.startswith("5 working days after")
    # the rest of the defaults still apply
    assert the(cp(), "cp_review", "2026-01-13").due == D("2026-04-12")


# ---------------------------------------------------------------- children in need, case managed, assessment


def cin(visits=(), reviews=()) -> Case:
    return Case("N1", "cin", cin_plan_start=D("2026-02-02"), visits=tuple(visits), reviews=tuple(reviews))


def test_cin_visits_and_reviews():
    visit, review = clocks_for(cin(), D("2026-02-03"))
    assert (visit.clock, visit.due) == ("cin_visit", D("2026-03-02"))
    assert (review.clock, review.due) == ("cin_review", D("2026-05-02"))
    assert "child in need plan started on 2 Feb 2026" in review.rule
    case = cin(seen("2026-03-02"), [ReviewFacts("cin_review", D("2026-04-30"))])
    visit, review = clocks_for(case, D("2026-05-01"))
    assert visit.due == D("2026-03-30")
    assert review.due == D("2026-07-30")
    assert review.rule == "3 months after the last child in need review on 30 Apr 2026"


def test_case_managed_reviews():
    case = Case("M1", "case_managed", case_managed_since=D("2026-08-31"))
    (clock,) = clocks_for(case, D("2026-09-01"))
    assert (clock.clock, clock.due) == ("case_managed_review", D("2027-02-28"))
    held = Case(
        "M1",
        "case_managed",
        case_managed_since=D("2026-08-31"),
        reviews=(ReviewFacts("case_managed_review", D("2027-02-20")),),
    )
    assert due(held, "case_managed_review", "2027-02-21") == "2027-08-20"


def test_assessment_for_any_child_referred_and_not_yet_assessed():
    open_ = Case("N2", "cin", cin_plan_start=D("2026-02-02"), referral=D("2026-01-05"))
    clock = the(open_, "assessment", "2026-01-06")
    assert clock.due == D("2026-03-09")  # 45 working days
    assert clock.rule == "45 working days after the referral on 5 Jan 2026, with no assessment completed"
    done = Case(
        "N2",
        "cin",
        cin_plan_start=D("2026-02-02"),
        referral=D("2026-01-05"),
        assessment_completed=D("2026-02-01"),
    )
    assert [c.clock for c in clocks_for(done, D("2026-02-03"))] == ["cin_visit", "cin_review"]
    # completed after the day asked about: still open on that day
    assert [c.clock for c in clocks_for(done, D("2026-01-20"))][-1] == "assessment"
    in_care_too = Case(
        "C9",
        "cic",
        looked_after_since=D("2026-03-02"),
        placements=(placed("2026-03-02"),),
        referral=D("2026-02-20"),
    )
    assert "assessment" in [c.clock for c in clocks_for(in_care_too, D("2026-03-03"))]


# ---------------------------------------------------------------- statuses


def managed_due_2026_07_08() -> Case:
    return Case("M2", "case_managed", case_managed_since=D("2026-01-08"))  # due Wed 8 Jul 2026


@pytest.mark.parametrize(
    ("on", "status"),
    [
        ("2026-07-09", "overdue"),
        ("2026-07-08", "due_today"),
        ("2026-07-07", "due_soon"),
        ("2026-07-01", "due_soon"),  # exactly 5 working days before
        ("2026-06-30", "on_track"),  # 6 working days before
        ("2026-01-09", "on_track"),
    ],
)
def test_status_boundaries(on, status):
    clock = the(managed_due_2026_07_08(), "case_managed_review", on)
    assert clock.due == D("2026-07-08")
    assert clock.status == status


def test_due_soon_counts_working_days_over_christmas():
    case = Case("M3", "case_managed", case_managed_since=D("2027-06-30"))  # due Thu 30 Dec 2027
    # from Wed 22 Dec the 5th working day is Fri 31 Dec, Mon 27 and Tue 28 Dec being bank holidays
    # (counting them, it would be Wed 29 Dec and the review would not yet be due soon)
    assert the(case, "case_managed_review", "2027-12-22").status == "due_soon"
    assert the(case, "case_managed_review", "2027-12-21").status == "due_soon"  # 5th: Thu 30 Dec
    assert the(case, "case_managed_review", "2027-12-20").status == "on_track"  # 5th: Wed 29 Dec


def test_worst_first():
    cases = [
        Case("Z", "case_managed", case_managed_since=D("2026-01-08")),  # due 8 Jul: on track on 1 Jun
        case_from_json(A1),  # cic_visit overdue (17 Apr), cic_review on track (27 Jun is 19 working days after 1 Jun)
        Case("B", "case_managed", case_managed_since=D("2025-12-01")),  # due 1 Jun: due today
    ]
    clocks = clocks_for_all(cases, D("2026-06-01"))
    assert [(c.child, c.status) for c in clocks] == [
        ("A1", "overdue"),
        ("B", "due_today"),
        ("A1", "on_track"),
        ("Z", "on_track"),
    ]
    shuffled = [clocks[2], clocks[0], clocks[3], clocks[1]]
    assert worst_first(shuffled) == clocks
    assert [STATUS_ORDER.index(c.status) for c in clocks] == sorted(
        STATUS_ORDER.index(c.status) for c in clocks
    )


def test_clock_to_json():
    (clock, _) = clocks_for(case_from_json(A1), D("2026-05-01"))
    assert clock.to_json() == {
        "child": "A1",
        "clock": "cic_visit",
        "due": "2026-04-17",
        "status": "overdue",
        "rule": "6 weeks after the last visit on 6 Mar 2026, in the placement's first year",
        "source": "Care Planning, Placement and Case Review (England) Regulations 2010, reg 28(2)(b)",
    }
    with pytest.raises(AttributeError):
        clock.due = D("2030-01-01")  # frozen
    assert clock == Clock(**{**clock.to_json(), "due": clock.due})


# ---------------------------------------------------------------- late write-ups


def test_late_write_up_after_two_working_days():
    visit = D("2027-12-24")  # Fri before Christmas: the 2nd working day after is Thu 30 Dec
    assert not is_late_write_up(visit, D("2027-12-24"))
    assert not is_late_write_up(visit, D("2027-12-30"))
    assert is_late_write_up(visit, D("2027-12-31"))
    assert is_late_write_up(datetime(2027, 12, 24, 16, 0), datetime(2027, 12, 31, 9, 0))


# ---------------------------------------------------------------- malformed cases


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "looked_after"}, "category"),
        ({"looked_after_since": "2026-02-30"}, "looked_after_since"),
        ({"looked_after_since": "02/03/2026"}, "looked_after_since"),
        ({"looked_after_since": None}, "looked_after_since"),
        ({"placements": []}, "placements"),
        ({"placements": [{"start": "2026-03-02", "end": "2026-01-01"}]}, "placements[0].end"),
        ({"placements": [{"start": "yesterday"}]}, "placements[0].start"),
        ({"placements": [{"start": "2026-03-02", "arrangement": "kinship"}]}, "placements[0].arrangement"),
        ({"visits": [{"date": "2026-03-06"}]}, "visits[0].seen"),
        ({"visits": [{"date": "2026-13-06", "seen": True}]}, "visits[0].date"),
        ({"reviews": [{"kind": "lac_review", "date": "2026-03-27"}]}, "reviews[0].kind"),
        ({"referral": 20260101}, "referral"),
    ],
)
def test_malformed_cases_name_the_case_and_field(change, field):
    with pytest.raises(CaseError) as error:
        case_from_json({**A1, **change})
    assert error.value.case_id == "A1"
    assert error.value.field == field
    assert str(error.value).startswith(f"case A1, field '{field}': ")


def test_missing_dates_a_clock_needs():
    with pytest.raises(CaseError, match="field 'strategy_discussion'"):
        case_from_json({"id": "P2", "category": "cp"})
    with pytest.raises(CaseError, match="field 'cin_plan_start'"):
        case_from_json({"id": "N3", "category": "cin"})
    with pytest.raises(CaseError, match="field 'case_managed_since'"):
        case_from_json({"id": "M4", "category": "case_managed"})
    with pytest.raises(CaseError, match="case P3, field 'strategy_discussion'"):
        clocks_for(Case("P3", "cp"), D("2026-01-01"))  # built directly, not from JSON
    with pytest.raises(CaseError, match="field 'category'"):
        clocks_for(Case("X1", "adopted"), D("2026-01-01"))
    assert case_from_json({"id": 7, "category": "cp", "initial_conference": "2026-01-12"}).id == "7"


# ---------------------------------------------------------------- seen due


def write_cases(tmp_path: Path, cases: list) -> str:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    return str(path)


def test_seen_due_json(tmp_path, capsys):
    path = write_cases(tmp_path, [A1, CP_WAITING])
    assert due_command(["--cases", path, "--on", "2026-05-01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(o["child"], o["clock"], o["due"], o["status"]) for o in out] == [
        ("A1", "cic_visit", "2026-04-17", "overdue"),
        ("A1", "cic_review", "2026-06-27", "on_track"),
        ("P1", "initial_conference", "2027-01-07", "on_track"),
    ]
    assert all(o["rule"] and o["source"] for o in out)


def test_seen_due_table_worst_first(tmp_path, capsys):
    path = write_cases(tmp_path, [CP_WAITING, A1])
    assert due_command(["--cases", path, "--on", "2026-05-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["child", "clock", "due", "status"]
    assert "A1" in lines[1] and "OVERDUE" in lines[1] and "17 Apr 2026" in lines[1]
    assert "P1" in lines[3] and "7 Jan 2027" in lines[3]


def test_format_table_when_nothing_is_due():
    assert "Nothing is due" in format_table([])


@pytest.mark.parametrize(
    "bad",
    [
        {**A1, "category": "adopted"},
        {**A1, "looked_after_since": "2026-02-30"},
        {**A1, "looked_after_since": None},
    ],
)
def test_seen_due_malformed_case_exits_2_with_nothing_on_stdout(tmp_path, capsys, bad):
    path = write_cases(tmp_path, [CP_WAITING, bad])
    assert due_command(["--cases", path, "--on", "2026-05-01", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "case A1, field '" in captured.err


def test_seen_due_input_errors_exit_2(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("[{")
    assert due_command(["--cases", str(tmp_path / "broken.json")]) == 2
    assert due_command(["--cases", str(tmp_path / "absent.json")]) == 2
    assert due_command(["--cases", write_cases(tmp_path, {"id": "A1"})]) == 2
    assert due_command(["--cases", write_cases(tmp_path, [A1]), "--on", "1 May"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not valid JSON" in captured.err and "JSON list" in captured.err


def test_seen_due_reads_the_store_only_through_a_loader(capsys):
    assert due_command(["--on", "2026-05-01"]) == 2
    assert "--cases" in capsys.readouterr().err
    assert due_command(["--on", "2026-05-01", "--json"], lambda: [case_from_json(A1)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_seen_due_bad_rules_exit_2(tmp_path, capsys, monkeypatch):
    rules = tmp_path / "typo.toml"
    rules.write_text('[cp_vist]\nperiod = "5 working days"\n')
    monkeypatch.setenv("SEEN_RULES", str(rules))
    assert due_command(["--cases", write_cases(tmp_path, [A1]), "--on", "2026-05-01"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "cp_vist" in captured.err


def test_seen_due_in_a_subprocess(tmp_path):
    path = write_cases(tmp_path, [A1, {**CP_WAITING, "strategy_discussion": "14/12/2026"}])
    code = f"import sys; from storage.timescales.due import due_command; sys.exit(due_command({['--cases', path, '--on', '2026-05-01', '--json']!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "case P1, field 'strategy_discussion'" in result.stderr


# ---------------------------------------------------------------- rules


def test_every_default_rule_cites_its_source():
    data = tomllib.loads(DEFAULT_RULES_PATH.read_text())

    def tables(node, path=""):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from tables(value, f"{path}{key}.")
                if "period" in value or "then" in value:
                    yield f"{path}{key}", value

    rules = dict(tables(data))
    assert len(rules) >= 18
    for name, rule in rules.items():
        assert rule.get("source", "").strip(), name


def test_rule_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[cin_visit]\nperiod = "fortnightly"\n')
    with pytest.raises(RuleError, match="not a period"):
        load_rules(bad)
    bad.write_text("[cin_visit\n")
    with pytest.raises(RuleError, match="not valid TOML"):
        load_rules(bad)
    with pytest.raises(RuleError, match="cannot read"):
        load_rules(tmp_path / "absent.toml")
    bad.write_text('[settings]\ndue_soon = "10 working days"\n[cic_visit.first_year]\nperiod = "4 weeks"\n')
    rules = load_rules(bad)
    assert rules.due_soon.text == "10 working days"
    assert rules.arms["cic_visit"]["first_year"].period.text == "4 weeks"
    assert rules.arms["cic_visit"]["first_year"].source.endswith("reg 28(2)(b)")  # kept from the defaults


def test_engine_is_pure():
    code = "import sys, storage.timescales; print(sorted(m for m in ('sqlmodel', 'nicegui', 'sqlalchemy') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_history_in_any_order():
    reviews = [
        ReviewFacts("cic_review", D("2026-06-20")),
        ReviewFacts("pep_review", D("2026-07-01")),
        ReviewFacts("cic_review", D("2026-03-27")),
    ]
    case = in_care(reviews=reviews, visits=seen("2026-06-25", "2026-03-06", "2026-04-30"))
    assert [r.date for r in case.reviews] == [D("2026-03-27"), D("2026-06-20"), D("2026-07-01")]
    assert due(case, "cic_review", "2026-07-02") == "2026-12-20"  # the third: 6 months after the last
    assert due(case, "cic_visit", "2026-07-02") == "2026-08-06"
    p = placed("2026-03-02", arrangement="interim_care_order_with_parent")
    case = in_care([p], seen("2026-04-30"), reversed(reviews))
    assert "first review on 27 Mar 2026" in the(case, "cic_visit", "2026-05-01").rule
    listed = Case("N1", "cin", cin_plan_start=D("2026-02-02"), visits=list(seen("2026-03-02")))
    assert isinstance(listed.visits, tuple)


def test_reviews_after_the_day_asked_about_are_ignored():
    reviews = [ReviewFacts("cic_review", D("2026-03-27")), ReviewFacts("cic_review", D("2026-06-20"))]
    assert due(in_care(reviews=reviews), "cic_review", "2026-04-01") == "2026-06-27"
    assert due(in_care(reviews=reviews), "cic_review", "2026-03-26") == "2026-03-30"

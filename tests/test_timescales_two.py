"""Timescales, part two: the plan's visit frequency, return home interviews, care leavers, health assessments.

Every expected date is worked out by hand from the rule in rules.toml, with England's weekends and bank
holidays written out (2026: Good Friday 3 Apr, Easter Monday 6 Apr; Christmas Day Fri 25 Dec, Boxing Day's
substitute Mon 28 Dec). No test depends on the real date.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from storage.timescales import (
    Case,
    CaseError,
    Clock,
    HealthAssessmentFacts,
    MissingEpisodeFacts,
    PlacementFacts,
    ReviewFacts,
    VisitFacts,
    clocks_for,
    is_missing,
)
from storage.timescales import calendar as england
from storage.timescales.due import case_from_json, due_command

D = date.fromisoformat


@pytest.fixture(autouse=True)
def _default_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEEN_RULES", raising=False)


def seen(*days: str) -> tuple[VisitFacts, ...]:
    return tuple(VisitFacts(D(d), True, True) for d in days)


def only(case: Case, clock: str, on: str) -> Clock:
    found = [c for c in clocks_for(case, D(on)) if c.clock == clock]
    assert len(found) == 1, [c.clock for c in clocks_for(case, D(on))]
    return found[0]


def names(case: Case, on: str) -> list[str]:
    return [c.clock for c in clocks_for(case, D(on))]


# ---------------------------------------------------------------- 1. the plan sets how often

def test_cp_plan_every_5_working_days_skips_easter():
    # Last seen Wed 1 Apr 2026: Thu 2 (1), Good Friday and Easter Monday skipped, Tue 7 (2) ... Fri 10 (5).
    case = Case("P", "cp", strategy_discussion=D("2026-03-02"), initial_conference=D("2026-03-20"),
                visits=seen("2026-04-01"), plan_visit_every="5 working days")
    clock = only(case, "cp_visit", "2026-04-09")
    assert clock.due == D("2026-04-10")
    assert clock.status == "due_soon"
    assert "as the child's plan sets" in clock.rule and clock.source.startswith("the child's plan")
    # Without the plan, the local 10 working days: Mon 13 (6) ... Fri 17 Apr (10).
    default = only(Case("P", "cp", initial_conference=D("2026-03-20"), visits=seen("2026-04-01")), "cp_visit",
                   "2026-04-09")
    assert default.due == D("2026-04-17")
    assert default.source.startswith("local procedures")


def test_cin_plan_counts_from_the_plan_start_when_no_one_has_visited():
    case = Case("N", "cin", cin_plan_start=D("2026-05-01"), plan_visit_every="2 weeks")
    clock = only(case, "cin_visit", "2026-05-10")
    assert clock.due == D("2026-05-15")
    assert "after the child in need plan started on 1 May 2026" in clock.rule


def test_case_managed_has_a_visit_clock_only_when_the_plan_sets_one():
    base = Case("M", "case_managed", case_managed_since=D("2025-12-01"), visits=seen("2026-01-31"))
    assert "case_managed_visit" not in names(base, "2026-02-10")
    planned = Case("M", "case_managed", case_managed_since=D("2025-12-01"), visits=seen("2026-01-31"),
                   plan_visit_every="1 month")
    clock = only(planned, "case_managed_visit", "2026-02-10")
    assert clock.due == D("2026-02-28")  # 31 Jan + 1 month: February has no 31st


def test_cic_plan_only_ever_brings_the_visit_sooner():
    # Placement 2 Mar 2026, last seen Fri 6 Mar, first year: reg 28(2)(b) says 6 weeks, Fri 17 Apr.
    def child(every: str | None) -> Case:
        return Case("C", "cic", looked_after_since=D("2026-03-02"), placements=(PlacementFacts(D("2026-03-02"), None),),
                    visits=seen("2026-03-06"), plan_visit_every=every)
    sooner = only(child("2 weeks"), "cic_visit", "2026-03-10")
    assert sooner.due == D("2026-03-20")
    assert "sooner than reg 28" in sooner.rule and sooner.source.startswith("the child's plan")
    later = only(child("3 months"), "cic_visit", "2026-03-10")
    assert later.due == D("2026-04-17")
    assert later.source.endswith("reg 28(2)(b)")
    # No visit yet in the placement: the plan counts from its start (2 Mar + 1 week = reg 28's 9 Mar anyway,
    # 3 working days is sooner: Thu 5 Mar).
    fresh = Case("C", "cic", looked_after_since=D("2026-03-02"), placements=(PlacementFacts(D("2026-03-02"), None),),
                 plan_visit_every="3 working days")
    assert only(fresh, "cic_visit", "2026-03-03").due == D("2026-03-05")


def test_a_plan_period_that_is_not_a_period_names_the_field():
    with pytest.raises(CaseError) as e:
        clocks_for(Case("P", "cin", cin_plan_start=D("2026-05-01"), plan_visit_every="every so often"), D("2026-05-02"))
    assert e.value.field == "plan_visit_every"


# ---------------------------------------------------------------- 2. missing episodes

def test_return_home_interview_is_72_hours_after_coming_back_weekends_and_christmas_included():
    # Back on Thu 24 Dec 2026: 3 calendar days later is Sun 27 Dec (72 hours do not stop for bank holidays).
    case = Case("R", "cin", cin_plan_start=D("2026-01-05"), missing_episodes=(
        MissingEpisodeFacts(D("2026-12-22"), D("2026-12-24"), None),))
    clock = only(case, "return_home_interview", "2026-12-25")
    assert clock.due == D("2026-12-27")
    assert clock.status == "due_soon"
    assert "missing" in clock.source and "72 hours" in clock.source
    assert only(case, "return_home_interview", "2026-12-28").status == "overdue"


def test_one_interview_clock_per_ended_episode_none_once_interviewed_or_still_missing():
    case = Case("R", "cp", initial_conference=D("2026-01-05"), missing_episodes=(
        MissingEpisodeFacts(D("2026-03-01"), D("2026-03-02"), None),
        MissingEpisodeFacts(D("2026-03-10"), D("2026-03-12"), D("2026-03-13")),  # interviewed: no clock
        MissingEpisodeFacts(D("2026-03-20"), D("2026-03-21"), None),
        MissingEpisodeFacts(D("2026-03-28"), None, None),  # still missing: no clock yet
    ))
    dues = sorted(c.due for c in clocks_for(case, D("2026-03-30")) if c.clock == "return_home_interview")
    assert dues == [D("2026-03-05"), D("2026-03-24")]
    assert is_missing(case, D("2026-03-30"))
    assert not is_missing(case, D("2026-03-27"))


def test_every_category_gets_interview_clocks_including_care_leavers():
    leaver = Case("L", "care_leaver", care_leaver_since=D("2026-01-15"),
                  missing_episodes=(MissingEpisodeFacts(D("2026-02-01"), D("2026-02-03"), None),))
    assert only(leaver, "return_home_interview", "2026-02-04").due == D("2026-02-06")


# ---------------------------------------------------------------- 3. care leavers

def test_pa_visit_every_two_months_from_the_last_visit_or_from_leaving_care():
    fresh = Case("L", "care_leaver", care_leaver_since=D("2026-01-15"))
    assert only(fresh, "pa_visit", "2026-02-01").due == D("2026-03-15")
    visited = Case("L", "care_leaver", care_leaver_since=D("2026-01-15"), visits=seen("2026-03-31"))
    clock = only(visited, "pa_visit", "2026-04-02")
    assert clock.due == D("2026-05-31")  # 31 Mar + 2 months
    assert "Care Leavers (England) Regulations 2010" in clock.source


def test_pa_visit_within_7_days_of_a_move_after_the_last_visit_whichever_is_sooner():
    case = Case("L", "care_leaver", care_leaver_since=D("2026-01-15"), visits=seen("2026-03-31"),
                accommodation_moves=(D("2026-04-10"), D("2026-02-01")))
    clock = only(case, "pa_visit", "2026-04-11")
    assert clock.due == D("2026-04-17")
    assert "moving to new accommodation on 10 Apr 2026" in clock.rule
    # A move before the last visit was already visited: the 2-month rule stands.
    assert only(case, "pa_visit", "2026-04-05").due == D("2026-05-31")


def test_pathway_plan_review_six_months_after_the_last_or_after_leaving_care():
    fresh = Case("L", "care_leaver", care_leaver_since=D("2026-01-15"))
    assert only(fresh, "pathway_plan_review", "2026-02-01").due == D("2026-07-15")
    reviewed = Case("L", "care_leaver", care_leaver_since=D("2026-01-15"),
                    reviews=(ReviewFacts("pathway_plan_review", D("2026-08-31")),))
    clock = only(reviewed, "pathway_plan_review", "2026-09-01")
    assert clock.due == D("2027-02-28")  # 31 Aug + 6 months: February ends on the 28th
    assert "reg 7" in clock.source


def test_a_care_leaver_needs_the_day_they_left_care():
    with pytest.raises(CaseError) as e:
        case_from_json({"id": "L", "category": "care_leaver"})
    assert e.value.field == "care_leaver_since"


# ---------------------------------------------------------------- 4. health assessments

def in_care(assessments: tuple[HealthAssessmentFacts, ...] | None, born: str | None = "2022-03-10",
            since: str = "2026-12-01") -> Case:
    return Case("H", "cic", looked_after_since=D(since), placements=(PlacementFacts(D(since), None),),
                date_of_birth=D(born) if born else None, health_assessments=assessments)


def test_initial_health_assessment_20_working_days_over_christmas():
    # Looked after from Tue 1 Dec 2026: Dec 2-4 (3), 7-11 (8), 14-18 (13), 21-24 (17), Christmas Day and Boxing
    # Day's substitute (Mon 28) skipped, 29 (18), 30 (19), Thu 31 Dec (20).
    clock = only(in_care(()), "initial_health_assessment", "2026-12-02")
    assert clock.due == D("2026-12-31")
    assert "Promoting the health and well-being of looked-after children" in clock.source
    assert "review_health_assessment" not in names(in_care(()), "2026-12-02")


def test_no_health_clocks_when_the_case_does_not_say_what_assessments_there_were():
    assert names(in_care(None), "2026-12-02") == ["cic_visit", "cic_review"]


def test_review_every_6_months_under_five_then_every_12():
    initial = HealthAssessmentFacts("initial", D("2026-12-20"))
    case = in_care((initial,))
    assert "initial_health_assessment" not in names(case, "2026-12-21")
    assert only(case, "review_health_assessment", "2026-12-21").due == D("2027-06-20")  # under five: 6 months
    # The day before the fifth birthday (10 Mar 2027) the child is under five; on it, five.
    day_before = in_care((initial, HealthAssessmentFacts("review", D("2027-03-09"))))
    assert only(day_before, "review_health_assessment", "2027-03-10").due == D("2027-09-09")
    birthday = in_care((initial, HealthAssessmentFacts("review", D("2027-03-10"))))
    clock = only(birthday, "review_health_assessment", "2027-03-11")
    assert clock.due == D("2028-03-10")
    assert "five or over" in clock.rule


def test_an_assessment_from_an_earlier_period_of_care_does_not_count():
    old = HealthAssessmentFacts("initial", D("2025-05-01"))
    assert only(in_care((old,)), "initial_health_assessment", "2026-12-02").due == D("2026-12-31")


def test_health_assessments_need_a_date_of_birth():
    with pytest.raises(CaseError) as e:
        case_from_json({"id": "H", "category": "cic", "looked_after_since": "2026-12-01",
                        "placements": [{"start": "2026-12-01"}],
                        "health_assessments": [{"kind": "initial", "date": "2026-12-20"}]})
    assert e.value.field == "date_of_birth"


# ---------------------------------------------------------------- seen due

CARE_LEAVER = {"id": "L1", "category": "care_leaver", "care_leaver_since": "2026-01-15", "visits": [
    {"date": "2026-03-31", "seen": True}], "accommodation_moves": ["2026-04-10"],
    "missing_episodes": [{"start": "2026-04-01", "end": "2026-04-02", "return_interview": None}]}


def test_seen_due_json_keeps_its_shape_with_the_new_clocks(tmp_path, capsys):
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([CARE_LEAVER]))
    assert due_command(["--cases", str(path), "--on", "2026-04-11", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(c["clock"], c["due"]) for c in out] == [
        ("return_home_interview", "2026-04-05"), ("pa_visit", "2026-04-17"), ("pathway_plan_review", "2026-07-15")]
    assert all(set(c) == {"child", "clock", "due", "status", "rule", "source"} for c in out)


@pytest.mark.parametrize(("change", "field"), [
    ({"plan_visit_every": 5}, "plan_visit_every"),
    ({"plan_visit_every": "5 fortnights"}, "plan_visit_every"),
    ({"category": "left_care"}, "category"),
    ({"missing_episodes": [{"start": "2026-04-01", "end": "1 April"}]}, "missing_episodes[0].end"),
    ({"missing_episodes": [{"start": "2026-04-03", "end": "2026-04-01"}]}, "missing_episodes[0].end"),
    ({"missing_episodes": "yes"}, "missing_episodes"),
    ({"accommodation_moves": "2026-04-10"}, "accommodation_moves"),
    ({"health_assessments": [{"kind": "annual", "date": "2026-04-01"}]}, "health_assessments[0].kind"),
    ({"reviews": [{"kind": "pathway_review", "date": "2026-04-01"}]}, "reviews[0].kind"),
])
def test_seen_due_refuses_bad_new_facts_naming_the_field(tmp_path, capsys, change, field):
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([CARE_LEAVER | change]))
    assert due_command(["--cases", str(path), "--on", "2026-04-11", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"field '{field}'" in captured.err


# ---------------------------------------------------------------- today is England's

def test_today_is_englands_date_at_23_30_utc_on_a_summer_evening(monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            moment = datetime(2026, 7, 14, 23, 30, tzinfo=UTC)
            return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

    monkeypatch.setattr(england, "datetime", Frozen)
    assert england.today_in_england() == D("2026-07-15")  # 00:30 BST: already Wednesday in England
    # A return home interview due on the 14th is overdue by England's day, not "due today" by the server's.
    case = Case("R", "cin", cin_plan_start=D("2026-01-05"),
                missing_episodes=(MissingEpisodeFacts(D("2026-07-10"), D("2026-07-11"), None),))
    assert only(case, "return_home_interview", england.today_in_england().isoformat()).status == "overdue"

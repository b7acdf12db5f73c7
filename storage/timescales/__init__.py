"""Statutory timescales: for each child, which visits and reviews are due, when, and which rule says so.

The one engine the app's pages, the push scheduler and `seen due` all call. It is pure: it takes
plain facts about a child (`Case`) and a date, and returns `Clock`s. It reads no database and
imports neither SQLModel nor NiceGUI; the numbers and citations come from a rule file
(`storage/rules.toml`, overridable with `SEEN_RULES`), the logic of which date each clock counts
from is here.

Which clocks a child has (one `Clock` per child per clock that applies):

| category       | clocks                                                                        |
| -------------- | ----------------------------------------------------------------------------- |
| `cic`          | `cic_visit`, `cic_review`, `initial_health_assessment` (until one is recorded for   |
|                | this period of care), `review_health_assessment` (once there is any assessment)     |
| `cp`           | `initial_conference` until the conference is held; then `cp_visit`, `cp_review`     |
| `cin`          | `cin_visit`, `cin_review`                                                           |
| `case_managed` | `case_managed_review`; `case_managed_visit` only when the plan sets a visit period  |
| `care_leaver`  | `pa_visit`, `pathway_plan_review`                                                   |
| any            | `assessment`, while there is a `referral` and no `assessment_completed`;            |
|                | `return_home_interview`, one per ended missing episode with no interview recorded   |

A child on a CP plan is also a child in need, but their CP clocks are the stricter ones, so they
do not get CiN clocks as well. Review kinds `health_assessment` and `pep_review` are accepted but
drive no clock (health assessments are their own facts, `health_assessments`). The CP initial
conference is the case's `initial_conference` date, not a review. A child's `plan_visit_every`
replaces the visit period for cp, cin and case_managed, and for cic only ever brings the visit sooner.

Clocks are worked out as at the date asked about (`on`): a visit, review, conference, completed
assessment or placement dated after `on` is ignored, as if it had not happened yet. So a review
that is only scheduled must not be passed in as a `ReviewFacts`: only held ones.

Date arithmetic: "+ N working days" is the Nth working day after the date, skipping Saturdays,
Sundays and England's bank holidays, substitute days included (the `holidays` package, GB/ENG).
"+ N days/weeks/months" is calendar; a month that lacks the day ends on its last day.

The rooms: `facts` (what the engine is told and answers), `calendar` (England's time zone, today's date
there, working days and months), `rules` (the rule file), `counting` (what every clock counts with),
`clocks` (the engine), `duties` (a care leaver's, a child in care's health and the return home interview
clocks) and `due` (the `seen due` command). This package re-exports the engine's public names.
"""

from storage.timescales.calendar import add_months, add_working_days, is_working_day
from storage.timescales.clocks import (
    NEEDS,
    UNWORKABLE,
    clocks_and_problems,
    clocks_for,
    clocks_for_all,
    is_late_write_up,
    is_missing,
    worst_first,
)
from storage.timescales.facts import (
    ARRANGEMENTS,
    CATEGORIES,
    CLOCKS,
    REVIEW_KINDS,
    STATUS_ORDER,
    Case,
    CaseError,
    Clock,
    HealthAssessmentFacts,
    MissingEpisodeFacts,
    PlacementFacts,
    ReviewFacts,
    VisitFacts,
)
from storage.timescales.rules import (
    DEFAULT_RULES_PATH,
    Period,
    Rule,
    RuleError,
    RuleSet,
    WeeklyThenRule,
    load_rules,
)

__all__ = [
    "ARRANGEMENTS", "CATEGORIES", "CLOCKS", "DEFAULT_RULES_PATH", "NEEDS", "REVIEW_KINDS", "STATUS_ORDER",
    "UNWORKABLE", "Case", "CaseError", "Clock", "HealthAssessmentFacts", "MissingEpisodeFacts", "Period", "PlacementFacts", "ReviewFacts", "Rule", "RuleError",
    "RuleSet", "VisitFacts", "WeeklyThenRule", "add_months", "add_working_days", "clocks_and_problems",
    "clocks_for", "clocks_for_all", "is_late_write_up", "is_missing", "is_working_day", "load_rules", "worst_first",
]

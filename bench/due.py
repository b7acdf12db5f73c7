"""The timescales engine over a whole authority: 100,000 children with two years' history each.

Targets (medians of 5 rounds, CPU seconds): under 2 s for 100,000 children on one core, and linear growth (the time for 100,000
under 12 times the time for 10,000). The cases are built before the clock starts; what is timed
is `clocks_for_all`, as the scheduler calls it, rules loaded and the working-day table built.
A Case sorts its visits and reviews by date when it is built, so the engine reads the latest
from the end; `due_100k_case_build` reports, for the record, what rebuilding the 100,000 Case
objects from their (already made, cache-cold) facts costs, sorting included, so that work is
not hidden. A store loader building cases from rows pays the sort while the rows are fresh.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from datetime import date, timedelta
from statistics import median

from bench import Figure, benchmark
from storage.timescales import (
    Case,
    HealthAssessmentFacts,
    MissingEpisodeFacts,
    PlacementFacts,
    ReviewFacts,
    VisitFacts,
    add_working_days,
    clocks_for_all,
    load_rules,
)

ON = date(2027, 6, 14)
HISTORY_DAYS = 730
SIZES = {"tiny": (200, 20), "full": (100_000, 10_000)}
REPEATS = {"tiny": 1, "full": 5}


def synthetic_cases(n: int, on: date = ON, seed: int = 959) -> list[Case]:
    """`n` children of every category with two years of visits, reviews and placements before `on`; some with
    plans that set their visits, missing episodes, health assessments (every child in care) and care leavers."""
    rng = random.Random(seed)
    first = on - timedelta(days=HISTORY_DAYS)
    # One date object per day, shared, as a database driver's would not be but memory here matters.
    days = [first + timedelta(days=i) for i in range(HISTORY_DAYS + 1)]

    def day(i: int) -> date:
        return days[max(0, min(i, HISTORY_DAYS))]

    def visits(start: int, low: int, high: int) -> tuple[VisitFacts, ...]:
        out = []
        i = start + rng.randint(1, low)
        while i <= HISTORY_DAYS:
            seen = rng.random() > 0.05
            out.append(VisitFacts(days[i], seen, seen and rng.random() > 0.2))
            i += rng.randint(low, high)
        return tuple(out)

    def reviews(kind: str, start: int, gaps: tuple[int, ...], then: int) -> tuple[ReviewFacts, ...]:
        out = []
        i = start
        for gap in gaps:
            i += gap + rng.randint(-5, 5)
            if i > HISTORY_DAYS:
                return tuple(out)
            out.append(ReviewFacts(kind, days[i]))
        while True:
            i += then + rng.randint(-10, 10)
            if i > HISTORY_DAYS:
                return tuple(out)
            out.append(ReviewFacts(kind, days[i]))

    def health(start: int) -> tuple[HealthAssessmentFacts, ...]:
        under_five = rng.random() < 0.2
        out, i, kind = [], start + rng.randint(10, 30), "initial"
        while i <= HISTORY_DAYS:
            out.append(HealthAssessmentFacts(kind, days[i], under_five))
            i, kind = i + (180 if under_five else 365) + rng.randint(-20, 20), "review"
        return tuple(out)

    def missing() -> tuple[MissingEpisodeFacts, ...]:
        out = []
        for _ in range(rng.randint(1, 3)):
            i = rng.randint(0, HISTORY_DAYS - 3)
            back = i + rng.randint(0, 2)
            out.append(MissingEpisodeFacts(days[i], days[back], days[back + 1] if rng.random() < 0.7 else None))
        return tuple(out)

    def plan(share: float, every: str) -> str | None:
        return every if rng.random() < share else None

    cases = []
    for k in range(n):
        cid = f"C{k:06d}"
        roll = rng.random()
        begin = rng.randint(0, 60)
        referral = assessed = None
        if rng.random() < 0.1:  # an assessment still open
            referral = day(HISTORY_DAYS - rng.randint(0, 70))
        else:
            referral = day(begin - 50)
            assessed = day(begin - 5)
        if roll < 0.4:
            starts = sorted({begin, *(rng.randint(begin, HISTORY_DAYS) for _ in range(rng.randint(0, 2)))})
            placements = []
            for j, s in enumerate(starts):
                last = j == len(starts) - 1
                long_term = last and rng.random() < 0.3
                placements.append(
                    PlacementFacts(
                        start=days[s],
                        end=None if last else days[starts[j + 1]],
                        long_term=long_term,
                        arrangement="standard" if rng.random() < 0.95 else "interim_care_order_with_parent",
                        child_agreed_less_frequent=long_term and rng.random() < 0.1,
                    )
                )
            case = Case(
                cid,
                "cic",
                looked_after_since=days[begin],
                referral=referral,
                assessment_completed=assessed,
                placements=tuple(placements),
                visits=visits(begin, 28, 45),
                reviews=reviews("cic_review", begin, (18, 90), 180),
                plan_visit_every=plan(0.05, "4 weeks"),
                health_assessments=health(begin) if rng.random() > 0.05 else (),  # 5% still awaiting the first
            )
        elif roll < 0.65:
            if rng.random() < 0.1:  # waiting for the initial conference
                strategy = HISTORY_DAYS - rng.randint(0, 25)
                case = Case(cid, "cp", strategy_discussion=days[strategy], referral=day(strategy - 3))
            else:
                conference = begin + 14
                case = Case(
                    cid,
                    "cp",
                    strategy_discussion=days[begin],
                    initial_conference=days[conference],
                    referral=referral,
                    assessment_completed=assessed,
                    visits=visits(conference, 7, 14),
                    reviews=reviews("cp_review", conference, (90,), 180),
                    plan_visit_every=plan(0.1, "5 working days"),
                )
        elif roll < 0.95:  # a CIN plan, or a case managed without a plan: one shape, their own figures
            kind, (soonest, latest), review_every, share, every = (
                ("cin", (18, 30), 90, 0.1, "2 weeks") if roll < 0.9 else ("case_managed", (60, 120), 180, 0.3, "1 month"))
            case = Case(
                cid,
                kind,
                referral=referral,
                assessment_completed=assessed,
                visits=visits(begin, soonest, latest),
                reviews=reviews(f"{kind}_review", begin, (), review_every),
                plan_visit_every=plan(share, every),
                cin_plan_start=days[begin] if kind == "cin" else None,
                case_managed_since=days[begin] if kind == "case_managed" else None,
            )
        else:
            case = Case(
                cid,
                "care_leaver",
                care_leaver_since=days[begin],
                visits=visits(begin, 30, 60),
                reviews=reviews("pathway_plan_review", begin, (), 180),
                accommodation_moves=tuple(sorted(days[rng.randint(begin, HISTORY_DAYS)]
                                                 for _ in range(rng.randint(0, 3)))),
            )
        if rng.random() < 0.03:
            case = dataclasses.replace(case, missing_episodes=missing())
        cases.append(case)
    return cases


def _timed(fn: Callable[[], object]) -> float:
    """CPU seconds `fn` takes: what "on one core" means, and steady while colleagues' jobs share the machine."""
    started = time.process_time()
    fn()
    return time.process_time() - started


@benchmark("due_100k")
def due_100k(size: str) -> list[Figure]:
    big, small = SIZES[size]
    full = size == "full"
    cases = synthetic_cases(big)
    rules = load_rules()
    add_working_days(ON, 1)  # build the working-day table outside the timing
    # Rounds of one run at each size back to back (the small one once more, to warm it), so both
    # see the same conditions on a shared machine; the medians are reported.
    bigs, smalls = [], []
    for _ in range(REPEATS[size]):
        bigs.append(_timed(lambda: clocks_for_all(cases, ON, rules)))
        clocks_for_all(cases[:small], ON, rules)
        smalls.append(_timed(lambda: clocks_for_all(cases[:small], ON, rules)))
    t_big, t_small = median(bigs), median(smalls)
    ratio = t_big / t_small
    # What building the cases costs, for the record: no target.
    t_build = _timed(lambda: [_rebuilt(c) for c in cases])
    return [
        Figure("due_100k", t_big, "s", baseline=t_small, ratio=ratio, target=2.0 if full else None),
        Figure("due_100k_growth", ratio, "x", target=12.0 if full else None),
        Figure("due_100k_case_build", t_build, "s"),
    ]


def _rebuilt(c: Case) -> Case:
    return Case(**{f.name: getattr(c, f.name) for f in dataclasses.fields(c)})

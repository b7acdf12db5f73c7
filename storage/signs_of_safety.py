"""Signs of Safety scores over time, for the charts on the child page: each person's overall safety score
(0-10) from the child's visits, and each worry and safety goal's scores, person by person.

A visit's scale and its safety goals are sealed in its body (`VisitBody.safety_scale`, `.safety_goals`); a
visit corrected by a later one counts once, as corrected, a draft not at all, and one that does not open
(changed outside Seen) is left out. A safety goal is followed from visit to visit by the id carried forward
with it (storage/visits.py opens a new visit with the latest goals), or else by its danger statement's words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlmodel import Session, col, select

from storage.child_forms import _read, child_session
from storage.forms.visit import SAFETY_GOAL_SCORERS
from storage.models import Child, RecordStatus, SafetyGoal, Visit, VisitBody, Worker
from storage.sealing import SealError
from storage.store import Store
from storage.timescales.calendar import LONDON


@dataclass
class SafetyScores:
    days: list[date] = field(default_factory=list)  # the days of visits with a scale, oldest first
    scores: dict[str, list[int | None]] = field(default_factory=dict)  # who -> their score each day (None: not given)
    goals: list[GoalScores] = field(default_factory=list)  # each worry and safety goal, in the order first recorded

    def latest(self) -> dict[str, int]:
        """Each person's most recent score."""
        return {who: next(s for s in reversed(values) if s is not None) for who, values in self.scores.items()}


@dataclass
class GoalScores:
    """One danger statement and its safety goal (in their latest words), and each person's score at each visit
    that carried it."""

    pair_id: str
    danger: str
    goal: str
    days: list[date] = field(default_factory=list)
    scores: dict[str, list[int | None]] = field(default_factory=dict)  # the person ("Parent or carer") -> their score each day

    def latest(self) -> dict[str, int]:
        """Each person's most recent score for this goal."""
        return {who: next(s for s in reversed(values) if s is not None)
                for who, values in self.scores.items() if any(s is not None for s in values)}


def counted_visits(store: Store, session: Session, child: Child) -> list[tuple[date, VisitBody]]:
    """The child's visits as they stand, oldest first: corrected ones as corrected, no drafts, none that
    does not open."""
    visits = list(session.exec(select(Visit).where(Visit.child_id == child.id,
                                                   Visit.status != RecordStatus.draft.value)
                               .order_by(col(Visit.visited_at))))
    corrected = {v.supersedes for v in visits if v.supersedes}
    counted: list[tuple[date, VisitBody]] = []
    for visit in visits:
        if visit.id in corrected:
            continue
        try:
            body: VisitBody = store.opened(visit).body
        except SealError:
            continue  # changed outside Seen: the child page names it (Store.child_records), the charts skip it
        counted.append((visit.visited_at.astimezone(LONDON).date(), body))
    return counted


def latest_goals(store: Store, session: Session, child: Child) -> list[SafetyGoal]:
    """The worries and safety goals of the child's latest visit that had any, to carry forward."""
    return next((body.safety_goals for _, body in reversed(counted_visits(store, session, child))
                 if body.safety_goals), [])


def goal_words(goal: SafetyGoal) -> str:
    """A safety goal and its scores in a sentence, for the timeline and the sign-off."""
    scores = ", ".join(f"{person} {goal.scores[who]}" for who, (person, _) in SAFETY_GOAL_SCORERS.items()
                       if who in goal.scores)
    return (f"Worried that {_without(goal.danger, 'worried that')} What needs to happen: "
            f"{_without(goal.goal, 'what needs to happen')} Scores (0-10): {scores or 'not scored'}.")


def _without(text: str, opening: str) -> str:
    """The words without the opening the worker may have typed too ("Worried that Worried that ...")."""
    if text.lower().startswith(opening):
        text = text[len(opening):].lstrip(" :.…")
    return text


def _words(text: str) -> str:
    return " ".join(text.lower().split())


def goals_over_time(counted: list[tuple[date, VisitBody]]) -> list[GoalScores]:
    """Each safety goal's scores visit by visit, matched by its carried id or its danger statement's words."""
    goals: list[GoalScores] = []
    given: list[list[dict[str, int]]] = []  # per goal, the scores at each of its days
    by_key: dict[str, int] = {}
    for day, body in counted:
        for g in body.safety_goals:
            n = by_key.get(g.pair_id, by_key.get(_words(g.danger)))
            if n is None:
                n = len(goals)
                goals.append(GoalScores(g.pair_id, g.danger, g.goal))
                given.append([])
            by_key[g.pair_id] = by_key[_words(g.danger)] = n
            goals[n].danger, goals[n].goal = g.danger, g.goal  # the latest words
            if goals[n].days and goals[n].days[-1] == day:
                given[n][-1] = g.scores  # the same goal twice in a day: the later visit's scores
            else:
                goals[n].days.append(day)
                given[n].append(g.scores)
    for goal, scores in zip(goals, given, strict=True):
        goal.scores = {person: [s.get(who) for s in scores] for who, (person, _) in SAFETY_GOAL_SCORERS.items()
                       if any(who in s for s in scores)}
    return goals


def safety_scores(store: Store, worker: Worker, child_id: str) -> SafetyScores:
    """The safety scores given at the child's visits, by person and day, and each safety goal's. Reading them
    is audited."""
    with child_session(store, worker, child_id) as (session, child):
        _read(session, worker, child, "safety_scale")
        counted = counted_visits(store, session, child)
    given = [(day, {s.who: s.score for s in body.safety_scale}) for day, body in counted if body.safety_scale]
    people = sorted({who for _, scale in given for who in scale})
    return SafetyScores([day for day, _ in given], {who: [scale.get(who) for _, scale in given] for who in people},
                        goals_over_time(counted))

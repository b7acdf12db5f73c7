"""The statutory returns' rules that touch one record, in Seen's own words, with the DfE rule code each matches.

The same checks speak where a worker records (`review_problems`, `missing_problems`) and on a manager's
Returns page (`problems_by_child`): "This review has no participation code; the SSDA903 return will reject it."
Codes are the DfE validators' (csc-validator-be-903: 167, 440, 441, 567, 574; csc-validator-be-cin: 8841), so
a test can hold Seen's words and the validators' findings to the same seeded records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from storage import access
from storage.models import MissingEpisode, Review, Role, Worker
from storage.returns.common import Caseload, PlanRow, age_on, load_caseload, review_day
from storage.store import Store

PARTICIPATION = {
    "PN0": "Child under 4 at the time of the review",
    "PN1": "Child physically attends and speaks for themselves",
    "PN2": "Child physically attends; an advocate speaks on their behalf",
    "PN3": "Child attends and conveys their view symbolically (non-verbally)",
    "PN4": "Child physically attends but does not speak for themselves or convey a view",
    "PN5": "Child does not attend; briefs an advocate to speak for them",
    "PN6": "Child does not attend but conveys their feelings by a facilitative medium",
    "PN7": "Child does not attend nor are their views conveyed to the review",
}


@dataclass(frozen=True)
class Problem:
    """One thing a return would reject, about one record."""

    code: str  # the DfE validator's rule code
    kind: str  # review, missing_episode
    record_id: str
    words: str


def review_problems(review: Review, date_of_birth: date | None, plans: Sequence[PlanRow] = ()) -> list[Problem]:
    """What the SSDA903 return (looked-after reviews) or the CIN census (CP reviews) would reject in a review."""
    day = review_day(review)
    if day is None:
        return []
    found: list[Problem] = []

    def problem(code: str, words: str) -> None:
        found.append(Problem(code, "review", review.id, words))

    if review.kind == "cic_review":
        age = age_on(date_of_birth, day)
        if review.participation not in PARTICIPATION:
            problem("167", "This review has no participation code; the SSDA903 return will reject it."
                    if not review.participation else
                    f"This review's participation code {review.participation} is not one of PN0 to PN7; the "
                    "SSDA903 return will reject it.")
        elif age is not None and review.participation == "PN0" and age >= 4:
            problem("440", f"This review says the child was under four (PN0), but they were {age} that day; the "
                    "SSDA903 return will reject it. Choose how they took part (PN1 to PN7).")
        elif age is not None and review.participation != "PN0" and age < 4:
            problem("441", f"The child was under four on the day of this review, so its participation code is PN0, "
                    f"not {review.participation}; the SSDA903 return will reject it.")
    elif review.kind == "cp_review":
        plan = next((p for p in plans if p.id == review.plan_id), None) or min(
            (p for p in plans if p.kind == "cp_plan"), key=lambda p: p.start, default=None)
        if plan is not None and day <= plan.start:
            problem("8841", f"This child protection review is dated {day:%-d %B %Y}, on or before the plan started "
                    f"({plan.start:%-d %B %Y}); the CIN census will reject it.")
    return found


def missing_problems(episodes: Sequence[MissingEpisode]) -> list[Problem]:
    """What the SSDA903 return would reject in a child's missing and absent episodes (each one, and how they
    sit together)."""
    found: list[Problem] = []
    ordered = sorted(episodes, key=lambda e: (e.start, e.id))
    for episode in ordered:
        if episode.end is not None and episode.end < episode.start:
            found.append(Problem("567", "missing_episode", episode.id,
                                 "This missing episode ends before it starts; the SSDA903 return will reject it. "
                                 "Check the two dates."))
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier.end is None or later.start < earlier.end:
            found.append(Problem("574", "missing_episode", later.id,
                                 "This missing episode starts while another is still open or before it ended; "
                                 "the SSDA903 return will reject overlapping episodes. Close or correct the earlier "
                                 "one."))
    return found


def child_problems(caseload: Caseload, child_id: str) -> list[Problem]:
    body = caseload.bodies.get(child_id)
    dob = body.date_of_birth if body else None
    found: list[Problem] = []
    for review in caseload.reviews[child_id]:
        found += review_problems(review, dob, caseload.plans[child_id])
    return found + missing_problems(caseload.missing[child_id])


@dataclass(frozen=True)
class ChildProblems:
    child_id: str
    name: str
    problems: list[Problem]


def problems_by_child(store: Store, worker: Worker) -> list[ChildProblems]:
    """For a manager's Returns page: each open child in their teams with what the returns would reject now."""
    with store.session() as session:
        store.require_role(session, worker, Role.manager.value, what="/returns")
        teams = access.managed_team_ids(session, worker)
        children = [c for c in access.visible_children(session, worker) if c.team_id in teams]
        caseload = load_caseload(store, session, children, placement_bodies=False)
    out = []
    for child in caseload.children:
        problems = child_problems(caseload, child.id)
        if problems:
            body = caseload.bodies[child.id]
            out.append(ChildProblems(child.id, f"{body.first_name} {body.last_name}", problems))
    return sorted(out, key=lambda c: c.name)

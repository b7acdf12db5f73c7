"""The statutory returns' rules that touch one record, in Seen's own words, with the DfE rule code each matches.

The same checks speak where a worker records (`review_problems`, `placement_problems`, `missing_problems`: the
child page's forms, storage/reviews.py, storage/placements.py, storage/missing.py, and the import) and on a
manager's Returns page (`problems_by_child`): "This review has no participation code; the SSDA903 return will
reject it." Codes are the DfE validators' (csc-validator-be-903: 167, 178, 213, 218, 225, 226, 234, 356, 440,
441, 567, 574; csc-validator-be-cin: 8841), so a test can hold Seen's words and the validators' findings to the
same seeded records.

Every DfE rule here is an error in the return, but not every one is wrong when recorded. A problem that `blocks`
is in the record itself and the worker can put it right now (a code for the wrong age, a placement ending before
it starts): recording refuses it. One that does not block may be put right later or elsewhere (a participation
code not known yet, a plan whose start date is wrong, a URN to look up): the form asks the worker to confirm
before saving, and the Returns page lists it until it is put right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from storage import access
from storage.models import PLACEMENT_TYPES, MissingEpisode, Placement, Review, Role, Worker
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
# SSDA903 PLACE_PROVIDER.
PROVIDERS = {
    "PR0": "Parent(s) or other person with parental responsibility",
    "PR1": "Own provision (by the local authority)",
    "PR2": "Other local authority provision",
    "PR3": "Other public provision (for example an NHS trust)",
    "PR4": "Private provision",
    "PR5": "Voluntary or third sector provision",
}
# SSDA903 REASON_PLACE_CHANGE (csc-validator-be-903 rule 1009's list).
CHANGE_REASONS = {
    "CARPL": "Change to the plan for the child (care planning)",
    "CLOSE": "Resignation or closure of the provision",
    "ALLEG": "Allegation (section 47) against the carer",
    "STAND": "Standards of care concern",
    "APPRR": "Approval of the carer removed",
    "CREQB": "Carer's request, because of the child's behaviour",
    "CREQO": "Carer's request, for other reasons",
    "CHILD": "Child's request",
    "LAREQ": "Responsible authority's request, for other reasons",
    "PLACE": "Change in the status of the placement only",
    "CUSTOD": "Child arrested and accommodated in police custody, or remanded",
    "OTHER": "Other",
}
TEMPORARY_PLACEMENTS = ("T0",)  # no provider (178, 213) and no reason for change (226)
# Placement types with no Ofsted URN (rule 218): with a parent, residential employment, NHS, custody, temporary.
NO_URN_PLACEMENTS = ("P1", "P3", "R1", "R2", "R5", "T0")


@dataclass(frozen=True)
class Problem:
    """One thing a return would reject, about one record."""

    code: str  # the DfE validator's rule code
    kind: str  # review, placement, missing_episode
    record_id: str
    words: str
    blocks: bool = False  # recording refuses it (else the worker confirms, and the Returns page lists it)
    field: str = ""  # the form's field the words belong beside


def review_problems(review: Review, date_of_birth: date | None, plans: Sequence[PlanRow] = ()) -> list[Problem]:
    """What the SSDA903 return (looked-after reviews) or the CIN census (CP reviews) would reject in a review."""
    day = review_day(review)
    if day is None:
        return []
    found: list[Problem] = []

    def problem(code: str, words: str, field: str, blocks: bool = False) -> None:
        found.append(Problem(code, "review", review.id, words, blocks, field))

    if review.kind == "cic_review":
        age = age_on(date_of_birth, day)
        if review.participation not in PARTICIPATION:
            problem("167", "This review has no participation code; the SSDA903 return will reject it."
                    if not review.participation else
                    f"This review's participation code {review.participation} is not one of PN0 to PN7; the "
                    "SSDA903 return will reject it.", "participation", blocks=bool(review.participation))
        elif age is not None and review.participation == "PN0" and age >= 4:
            problem("440", f"This review says the child was under four (PN0), but they were {age} that day; the "
                    "SSDA903 return will reject it. Choose how they took part (PN1 to PN7).", "participation",
                    blocks=True)
        elif age is not None and review.participation != "PN0" and age < 4:
            problem("441", f"The child was under four on the day of this review, so its participation code is PN0, "
                    f"not {review.participation}; the SSDA903 return will reject it.", "participation", blocks=True)
    elif review.kind == "cp_review":
        plan = next((p for p in plans if p.id == review.plan_id), None) or min(
            (p for p in plans if p.kind == "cp_plan"), key=lambda p: p.start, default=None)
        if plan is not None and day <= plan.start:
            problem("8841", f"This child protection review is dated {day:%-d %B %Y}, on or before the plan started "
                    f"({plan.start:%-d %B %Y}); the CIN census will reject it.", "held_on")
    return found


def warnings_detail(found: list[Problem]) -> str | None:
    """What the audit trail keeps of a record saved though a return would reject it: the rules' codes."""
    return f"saved with return warnings {', '.join(p.code for p in found)}" if found else None


def placement_problems(placement: Placement, date_of_birth: date | None, followed: bool = True) -> list[Problem]:
    """What the SSDA903 return would reject in one placement (its episode's type, provider, URN, end and reason
    for the change). `followed`: whether another placement may follow it (on the Returns page, whether one
    does), which is when an ended placement needs a reason for the change."""
    found: list[Problem] = []

    def problem(code: str, words: str, field: str, blocks: bool = False) -> None:
        found.append(Problem(code, "placement", placement.id, words, blocks, field))

    kind = placement.placement_type
    temporary = kind in TEMPORARY_PLACEMENTS
    if placement.end is not None and placement.end < placement.start:
        problem("356", f"This placement ends ({placement.end:%-d %B %Y}) before it starts "
                f"({placement.start:%-d %B %Y}); the SSDA903 return will reject it. Check the two dates.", "end",
                blocks=True)
    if placement.provider_code and placement.provider_code not in PROVIDERS:
        problem("178", f"{placement.provider_code} is not a placement provider code (PR0 to PR5); the SSDA903 "
                "return will reject it.", "provider_code", blocks=True)
    elif temporary and placement.provider_code:
        problem("213", "A temporary placement (T0) has no provider code in the SSDA903 return, which will reject "
                "one. Leave the provider code blank.", "provider_code", blocks=True)
    if not placement.urn and kind in PLACEMENT_TYPES and kind not in NO_URN_PLACEMENTS:
        problem("218", f"This placement has no Ofsted URN; the SSDA903 return needs one for a {kind} placement. "
                "Enter the provider's URN, or XXXXXXX if it has none.", "urn")
    if placement.change_reason:
        if temporary:
            problem("226", "A temporary placement (T0) has no reason for a change in the SSDA903 return, which "
                    "will reject one. Leave the reason blank.", "change_reason", blocks=True)
        age = age_on(date_of_birth, placement.end) if placement.end else None
        if placement.change_reason == "CUSTOD" and age is not None and age < 10:
            problem("234", f"The child was {age} when this placement ended; a child under ten cannot move because "
                    "they were taken into custody (CUSTOD), and the SSDA903 return will reject it.",
                    "change_reason", blocks=True)
    elif placement.end is not None and not temporary and followed:
        problem("225", "This placement ended with no reason for the change; if the child moved to another "
                "placement, the SSDA903 return will reject it without one.", "change_reason")
    return found


CONFIRM_WORDS = ("The statutory return would reject this record as it is (see above). Put it right, or say you "
                 "will put it right later and save it anyway.")


def recording_problems(found: Sequence[Problem], confirmed: bool) -> tuple[dict[str, str], bool]:
    """What a form says when it is saved: each problem beside its field, and whether any refuses the record.

    A problem that blocks refuses it. Otherwise the worker is asked to confirm (under `returns_confirmed`, the
    form's field storage/forms/review.py defines) unless they have: then nothing stops the save.
    """
    blocking = {p.field or p.kind: p.words for p in found if p.blocks}
    if blocking:
        return blocking, True
    if confirmed or not found:
        return {}, False
    return {**{p.field or p.kind: p.words for p in found}, "returns_confirmed": CONFIRM_WORDS}, False


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
    placements = caseload.placements[child_id]
    for placement in placements:
        if caseload.period_on(child_id, placement.start) is None:
            continue  # not an episode of care (a care leaver's home): the SSDA903 return does not hold it
        followed = placement.end is not None and any(
            other.id != placement.id and other.start >= placement.end for other in placements)
        found += placement_problems(placement, dob, followed)
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

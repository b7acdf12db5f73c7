"""One policy for every path: who may create, change, sign off, allocate and close what.

A record reaches storage through a page, the offline page, a sync push, an import or the CLI; the rules
here decide for all of them. Each rule returns None when the thing may be done, or a `No` saying why not
(a short rule name for the audit trail, and a plain-English message for the worker); each path raises
its own error with that message (the screens `OversightError`/`FormInvalid`, the sync server a 403).

The worker doing a thing is always the signed-in worker, or the device's worker for a sync push: the
author and signer of a record come from there, never from the data sent. Records a manager signs off
(visits, wishes and feelings, life story) are final once signed off, whether or not they carry a sync
clock (demo and imported records have none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.models import (
    FOSTER_PLACEMENTS,
    LEGAL_STATUSES,
    PLACEMENT_ARRANGEMENTS,
    PLACEMENT_TYPES,
    REVIEW_KINDS,
    CarePlan,
    Category,
    Child,
    LifeStoryEntry,
    RecordStatus,
    Role,
    Visit,
    WishesAndFeelings,
    Worker,
)
from storage.timescales.calendar import LONDON
from storage.timescales.rules import RuleError, plan_period

# Records a manager signs off, after which they are final (by kind, as sync names them).
FINAL_KINDS = ("visit", "wishes_and_feelings", "life_story")
# What a new record of those kinds may arrive as: sign-off and return happen to a record already held.
NEW_RECORD_STATUSES = (RecordStatus.draft.value, RecordStatus.submitted.value)
# The only parts of a submitted visit its manager's sign-off or return changes.
DECISION_FIELDS = frozenset({"status", "signed_off_by", "signed_off_at", "updated_at", "body.manager_note",
                             "body.return_reason"})
# A device's time can run a little ahead of the server's: a visit "now" must not read as the future.
DEVICE_TIME_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class No:
    """Why something may not be done: `rule` names the rule (for the audit trail), `message` tells the worker."""

    rule: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Actor:
    """The worker doing something, with the teams they manage (their own too, if they are a manager)."""

    worker: Worker
    teams: frozenset[str]

    @property
    def id(self) -> str:
        return self.worker.id

    def manages(self, team_id: str | None) -> bool:
        return bool(team_id) and team_id in self.teams and bool(self.worker.active)

    def may_see(self, child: Child) -> bool:
        """Practitioners see their own caseload; managers their teams'; admins no case records."""
        return child.worker_id == self.worker.id or child.team_id in self.teams


def actor(worker: Worker, teams: Iterable[str]) -> Actor:
    return Actor(worker, frozenset(teams))


# ---------------------------------------------------------------- the rules the screens use too


def is_final(record: Any) -> bool:
    """Signed off by a manager: from then the record cannot be changed (a correction supersedes it)."""
    return getattr(record, "status", None) == RecordStatus.signed_off.value


SIGNED_OFF = No("signed_off_final", "A manager has signed this record off, so it cannot be changed. "
                                    "Record a new one that supersedes it instead.")


def why_not_decide(who: Actor, visit: Visit, child: Child) -> No | None:
    """Whether `who` may sign this visit off or return it to its worker."""
    if not who.manages(child.team_id):
        return No("not_manager", "Only a manager of the child's team can sign a visit off or return it.")
    if visit.status == RecordStatus.signed_off.value:
        return No("signed_off_final", "This visit has already been signed off; signed-off records cannot be "
                                      "changed.")
    if visit.status != RecordStatus.submitted.value:
        return No("not_submitted", "This visit is not waiting for sign-off: the worker has not submitted it.")
    if visit.worker_id == who.id:
        return No("own_visit", "You cannot sign off or return your own visit; another manager must.")
    return None


def why_not_allocate(who: Actor, child: Child, new_worker: Worker | None, new_team: str | None = None) -> No | None:
    """Whether `who` may move the child to `new_worker` (and `new_team`, which must be that worker's team)."""
    if not who.manages(child.team_id):
        return No("not_manager", "Only a manager of the child's team can move the child to another worker.")
    if new_worker is None:
        if new_team is not None and new_team != child.team_id and not who.manages(new_team):
            return No("not_manager", "A child can be moved only to a team you manage.")
        return None
    if (not new_worker.active or new_worker.role != Role.practitioner.value
            or not who.manages(new_worker.team_id)):
        return No("bad_allocation", "Choose a worker in a team you manage.")
    if new_team is not None and new_team != new_worker.team_id:
        return No("bad_allocation", "A child moves to the team of the worker they are allocated to.")
    return None


def why_not_close(who: Actor, child: Child) -> No | None:
    """Whether `who` may close the child's case (or open it again)."""
    if not who.manages(child.team_id):
        return No("not_manager", "Only a manager of the child's team can close a case or open it again.")
    return None


def why_not_create_child(who: Actor, child: Child, allocated: Worker | None) -> No | None:
    """A new child: a manager adds one to a team they manage; a worker only to their own team, as their own."""
    own = child.team_id == who.worker.team_id and child.worker_id == who.id
    if not (who.manages(child.team_id) or own):
        return No("other_team", "A child can be added only to your own team's caseload (or a team you manage).")
    if child.worker_id and (allocated is None or not allocated.active or allocated.team_id != child.team_id):
        return No("bad_allocation", "A new child can be allocated only to an active worker in the child's team.")
    if child.closed_on is not None:
        return No("closed", "A new child cannot arrive with their case already closed.")
    return None


def why_not_link_action(child_id: str, plan: CarePlan | None) -> No | None:
    """A care plan action joins a plan of its own child."""
    if plan is None or plan.child_id != child_id:
        return No("other_plan", "That plan could not be found for this child. An action joins one of the "
                                "child's own plans.")
    return None


def why_not_correct(who: Actor, child_id: str, old: Any) -> No | None:
    """A correction supersedes a submitted record of the same child, written by the same worker."""
    if old is None or old.child_id != child_id or old.status == RecordStatus.draft.value:
        return No("bad_correction", "The record being corrected could not be found for this child.")
    if old.worker_id != who.id:
        return No("not_author", "Only the worker who wrote a record can correct it.")
    return None


def why_not_placement(placement: Any) -> No | None:
    """A placement as the import checks one: an SSDA903 type, a known arrangement, an end after its start."""
    if placement.placement_type not in PLACEMENT_TYPES:
        return No("invalid", f"{placement.placement_type!r} is not an SSDA903 placement type code.")
    if placement.arrangement not in PLACEMENT_ARRANGEMENTS:
        return No("invalid", f"{placement.arrangement!r} is not a placement arrangement Seen knows.")
    if placement.end is not None and placement.end < placement.start:
        return No("invalid", "The placement ends before it starts.")
    if placement.distance_km is not None and placement.distance_km < 0:
        return No("invalid", "A placement's distance from home cannot be negative.")
    if placement.child_agreed_less_frequent and not (placement.long_term
                                                     and placement.placement_type in FOSTER_PLACEMENTS):
        return No("invalid", "Only a child in a long-term foster placement can agree to be visited less often "
                             "(reg 28(3A)).")
    # The SSDA903 return's rules that refuse a placement on the child's page refuse it on every path (those that
    # need the child's age are checked where the date of birth is opened: the page and the import). Imported
    # here: the returns' rules read the store, which reads this module.
    from storage.returns.rules import placement_problems

    blocking = [p for p in placement_problems(placement, None, followed=False) if p.blocks]
    return No("invalid", blocking[0].words) if blocking else None


def why_not_child_record(child: Any) -> No | None:
    """A child's clear details as the import checks them: a category Seen knows, an SSDA903 legal status."""
    if child.category not in {c.value for c in Category}:
        return No("invalid", f"{child.category!r} is not a category Seen knows "
                             "(cin, cp, cic, case_managed, care_leaver).")
    if child.plan_visit_every:
        try:
            plan_period(child.plan_visit_every)
        except RuleError as e:
            return No("invalid", f"The plan's visit frequency: {e}.")
    if child.legal_status and child.legal_status not in LEGAL_STATUSES:
        return No("invalid", f"{child.legal_status!r} is not an SSDA903 legal status code.")
    return None


# ---------------------------------------------------------------- a synced change


@dataclass
class Lookup:
    """How the sync server finds what a rule needs: records held (or arriving earlier in the same batch)."""

    child: Callable[[str], Child | None]
    record: Callable[[type[Any], str], Any]
    worker: Callable[[str], Worker | None]
    now: datetime


def why_not_change(who: Actor, kind: str, stored: Any, incoming: Any, changed: set[str], look: Lookup) -> No | None:
    """Whether `who` may make this change: `stored` is the record held (None for a new one), `incoming` the
    record as the change would leave it, and `changed` the fields (clear names, and `body.<name>`) whose
    value the change would alter. The child it is for has been checked already (`Actor.may_see`)."""
    if kind == "child":
        return _child_change(who, stored, incoming, changed, look)
    if kind in FINAL_KINDS:
        return _final_kind_change(who, kind, stored, incoming, changed, look)
    if kind == "photo":
        if stored is not None:
            # Its image may arrive later (older Seens sent photos without): what it belongs to never changes.
            moved = changed & {"record_id", "mime"}
            return No("photo_final", "A photo cannot be moved or changed once added.") if moved else None
        entry = look.record(LifeStoryEntry, incoming.record_id)
        if entry is None or entry.child_id != incoming.child_id:
            return No("other_record", "A photo belongs to a life-story entry of the same child.")
        return None
    if kind == "care_plan_action":
        if stored is None or "plan_id" in changed:
            refusal = why_not_link_action(incoming.child_id, look.record(CarePlan, incoming.plan_id))
            if refusal:
                return refusal
        if incoming.from_visit and (stored is None or "from_visit" in changed):
            visit = look.record(Visit, incoming.from_visit)
            if visit is None or visit.child_id != incoming.child_id:
                return No("other_record", "An action arising comes from a visit to the same child.")
        return None
    if kind == "placement" and (stored is None or changed):
        return why_not_placement(incoming)
    if kind == "review" and incoming.kind not in REVIEW_KINDS:
        return No("invalid", f"{incoming.kind!r} is not a kind of review Seen knows.")
    if kind == "missing_episode":
        return why_not_missing_episode(incoming)
    return None


def why_not_missing_episode(episode: Any) -> No | None:
    """A missing episode in order: it ends on or after it starts, and an interview follows the return."""
    if episode.end is not None and episode.end < episode.start:
        return No("invalid", "A missing episode cannot end before it starts.")
    for when in (episode.interview_offered_on, episode.interview_held_on):
        if when is not None and (episode.end is None or when < episode.end):
            return No("invalid", "A return home interview comes after the child came back: give the episode's "
                                 "end first, and an interview date on or after it.")
    return None


def _child_change(who: Actor, stored: Child | None, incoming: Any, changed: set[str], look: Lookup) -> No | None:
    if (stored is None or changed & {"category", "legal_status"}) and (refusal := why_not_child_record(incoming)):
        return refusal
    if stored is None:
        allocated = look.worker(incoming.worker_id) if incoming.worker_id else None
        return why_not_create_child(who, incoming, allocated)
    if changed & {"worker_id", "team_id"}:
        new_worker = look.worker(incoming.worker_id) if "worker_id" in changed and incoming.worker_id else None
        if "worker_id" in changed and incoming.worker_id is None:
            refusal = why_not_close(who, stored)  # unallocating is a manager's, as closing is
        else:
            refusal = why_not_allocate(who, stored, new_worker, incoming.team_id if "team_id" in changed else None)
        if refusal:
            return refusal
    if "closed_on" in changed:
        return why_not_close(who, stored)
    if "category" in changed and not who.manages(stored.team_id):
        # The category decides which statutory clocks run: changing it is a decision about the case.
        return No("not_manager", "Only a manager of the child's team can change the child's category.")
    return None


def _final_kind_change(who: Actor, kind: str, stored: Any, incoming: Any, changed: set[str],
                       look: Lookup) -> No | None:
    if stored is None:
        return _new_record(who, kind, incoming, look)
    if not changed:
        return None  # the record as held, sent again
    if is_final(stored):
        return SIGNED_OFF
    if stored.worker_id == who.id and stored.status == RecordStatus.draft.value:
        return _new_record(who, kind, incoming, look)  # the author finishing their own draft
    child = look.child(stored.child_id)
    if kind == "visit" and child is not None and who.manages(child.team_id) and stored.worker_id != who.id:
        refusal = why_not_decide(who, stored, child)
        if refusal:
            return refusal
        if changed - DECISION_FIELDS:
            return No("decision_only", "Signing a visit off or returning it changes nothing else in it.")
        if incoming.status == RecordStatus.signed_off.value:
            if incoming.signed_off_by != who.id or incoming.signed_off_at is None:
                return No("not_signer", "A visit is signed off by the manager whose device sends it.")
            return None
        if incoming.status == RecordStatus.returned.value and incoming.signed_off_by is None:
            return None
        return No("decision_only", "A manager's decision on a visit signs it off or returns it.")
    if stored.worker_id == who.id:
        return No("submitted_final", "A submitted record cannot be changed: record a correction that "
                                     "supersedes it instead.")
    return No("not_author", "Only its author can change a draft, and only a manager of the child's team can sign "
                            "a visit off or return it.")


def _new_record(who: Actor, kind: str, incoming: Any, look: Lookup) -> No | None:
    if incoming.worker_id != who.id:
        return No("not_author", "A record's author is the worker of the device that sends it; this one names "
                                "another worker.")
    if incoming.status not in NEW_RECORD_STATUSES or getattr(incoming, "signed_off_by", None) is not None \
            or getattr(incoming, "signed_off_at", None) is not None:
        return No("not_signer", "A record arrives as a draft or submitted: only a manager signs it off or "
                                "returns it, once it is held.")
    if kind == "visit" and _aware(incoming.visited_at) > look.now + DEVICE_TIME_SLACK:
        return No("future", "The visit's date and time are in the future. Record when the visit happened.")
    if kind != "visit" and incoming.on > (look.now + DEVICE_TIME_SLACK).astimezone(LONDON).date():  # England's day
        return No("future", "The record's date is in the future. Record the day the work happened.")
    if incoming.supersedes:
        model = {"visit": Visit, "life_story": LifeStoryEntry, "wishes_and_feelings": WishesAndFeelings}[kind]
        return why_not_correct(who, incoming.child_id, look.record(model, incoming.supersedes))
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)

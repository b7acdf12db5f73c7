"""Signs of Safety scores over time: each person's safety score (0-10) from the child's visits, for the chart
on the child page.

A visit's scale is sealed in its body (`VisitBody.safety_scale`); a visit corrected by a later one counts once,
as corrected, a draft not at all, and one that does not open (changed outside Seen) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlmodel import col, select

from storage.child_forms import _read, child_session
from storage.models import RecordStatus, Visit, VisitBody, Worker
from storage.sealing import SealError
from storage.store import Store
from storage.timescales.calendar import LONDON


@dataclass
class SafetyScores:
    days: list[date] = field(default_factory=list)  # the days of visits with a scale, oldest first
    scores: dict[str, list[int | None]] = field(default_factory=dict)  # who -> their score each day (None: not given)

    def latest(self) -> dict[str, int]:
        """Each person's most recent score."""
        return {who: next(s for s in reversed(values) if s is not None) for who, values in self.scores.items()}


def safety_scores(store: Store, worker: Worker, child_id: str) -> SafetyScores:
    """The safety scores given at the child's visits, by person and day. Reading them is audited."""
    with child_session(store, worker, child_id) as (session, child):
        _read(session, worker, child, "safety_scale")
        visits = list(session.exec(select(Visit).where(Visit.child_id == child.id,
                                                       Visit.status != RecordStatus.draft.value)
                                   .order_by(col(Visit.visited_at))))
        corrected = {v.supersedes for v in visits if v.supersedes}
        given: list[tuple[date, dict[str, int]]] = []
        for visit in visits:
            if visit.id in corrected:
                continue
            try:
                body: VisitBody = store.opened(visit).body
            except SealError:
                continue  # changed outside Seen: the child page names it (Store.child_records), the chart skips it
            if body.safety_scale:
                given.append((visit.visited_at.astimezone(LONDON).date(), {s.who: s.score for s in body.safety_scale}))
    people = sorted({who for _, scale in given for who in scale})
    return SafetyScores([day for day, _ in given], {who: [scale.get(who) for _, scale in given] for who in people})

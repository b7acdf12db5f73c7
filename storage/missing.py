"""Missing episodes: when a child went missing and came back, and the return home interview after it.

Recorded from the child's page, sealed (what the child said) and synced like every other record. An ended
episode with no interview offered or held starts the `return_home_interview` clock (storage/timescales/); an
episode with no end means the child is missing now, and the child's page and the dashboard say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from storage import audit, policy
from storage.child_forms import FormInvalid, past_date
from storage.models import Child, MissingEpisode, MissingEpisodeBody, Worker
from storage.record_dates import CaseDates, date_problem
from storage.returns.rules import missing_problems
from storage.store import Store
from storage.timescales.calendar import today_in_england

FIELDS = {"start": "day they went missing", "end": "day they came back",
          "offered_on": "day the return home interview was offered", "held_on": "day the interview was held"}


@dataclass(frozen=True)
class EpisodeView:
    id: str
    start: date
    end: date | None
    offered_on: date | None
    held_on: date | None
    child_said: str
    absent: bool = False  # away from placement without permission, not missing (SSDA903 "A")
    accepted: bool | None = None  # whether the child accepted the return home interview


def episodes_for(store: Store, session: Session, child_id: str) -> list[EpisodeView]:
    """The child's missing episodes, latest first, opened."""
    rows = session.exec(select(MissingEpisode).where(MissingEpisode.child_id == child_id)
                        .order_by(col(MissingEpisode.start).desc()))
    out = []
    for row in rows:
        body: MissingEpisodeBody = store.opened(row).body
        out.append(EpisodeView(row.id, row.start, row.end, row.interview_offered_on, row.interview_held_on,
                               body.child_said, row.absent, row.interview_accepted))
    return out


def is_missing_now(episodes: list[EpisodeView], on: date) -> bool:
    return any(e.start <= on and (e.end is None or e.end > on) for e in episodes)


def _day(fields: dict[str, Any], name: str, today: date, problems: dict[str, str]) -> date | None:
    """An episode's date, which may be left blank until it is known."""
    return past_date(fields, name, today, problems, blank=None,
                     malformed=f"Enter the {FIELDS[name]} as a date, like {{example}}, or leave it blank.",
                     future=f"The {FIELDS[name]} is in the future. Enter the day it happened.")


def save_episode(store: Store, worker: Worker, child_id: str, fields: dict[str, Any],
                 today: date | None = None) -> MissingEpisode:
    """Records a new missing episode, or (with `episode_id`) the child's return and the interview on one.

    Raises FormInvalid saying what to fix; a date before the child's birth or out of order is refused and
    audited. Raises NotAllowed (audited) for a child the worker may not see.
    """
    today = today or today_in_england()
    problems: dict[str, str] = {}
    days = {name: _day(fields, name, today, problems) for name in FIELDS}
    if days["start"] is None and "start" not in problems:
        problems["start"] = "Enter the day the child went missing."
    said = fields.get("child_said")
    said = said.strip() if isinstance(said, str) else ""
    with store.session() as session:
        child = store.child_for(session, worker, child_id)
        episode_id = fields.get("episode_id") or ""
        episode = session.get(MissingEpisode, episode_id) if episode_id else MissingEpisode(
            child_id=child.id, start=days["start"] or today)
        if episode is None or episode.child_id != child.id:
            problems["episode_id"] = "That missing episode could not be found for this child."
        if problems:
            _refuse(session, worker, child, " ".join(problems.values()))
            raise FormInvalid(problems)
        assert episode is not None and days["start"] is not None
        episode.start, episode.end = days["start"], days["end"]
        episode.interview_offered_on, episode.interview_held_on = days["offered_on"], days["held_on"]
        # For the statutory returns: away rather than missing, and the interview accepted (yes, no or not asked).
        episode.absent = fields.get("absent") is True
        accepted = fields.get("interview_accepted")
        episode.interview_accepted = accepted if isinstance(accepted, bool) else None
        born = store.opened(child).body.date_of_birth
        for name, day in days.items():
            problem = date_problem(day, CaseDates(born=born), "missing episode") if day else None
            if problem is not None:
                problems[name] = problem.message
        refusal = policy.why_not_missing_episode(episode)
        if refusal is not None:
            problems["end" if days["end"] is not None and days["end"] < days["start"] else "offered_on"] = \
                refusal.message
        overlap = _overlap(session, episode)
        if overlap and not problems:
            problems["start"] = overlap
        if problems:
            _refuse(session, worker, child, " ".join(problems.values()))
            raise FormInvalid(problems)
        store.write(session, episode, MissingEpisodeBody(child_said=said), actor=worker,
                    action="update" if episode_id else "create")
        return episode


def _overlap(session: Session, episode: MissingEpisode) -> str | None:
    """The SSDA903 return's words if this episode would overlap another of the child's (its rule 574)."""
    others = [e for e in session.exec(select(MissingEpisode).where(MissingEpisode.child_id == episode.child_id))
              if e.id != episode.id]
    before = [p for p in missing_problems(others) if p.code == "574"]
    after = [p for p in missing_problems([*others, episode]) if p.code == "574"]
    return after[0].words if len(after) > len(before) else None


def _refuse(session: Session, worker: Worker, child: Child, why: str) -> None:
    audit.refuse(session, audit.Refusal(why, kind="missing_episode", record_id=child.id, worker_id=worker.id,
                                        child_id=child.id, detail=why))

"""What the timescales engine is told about a stored child: submitted visits only, corrections once."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import select

from storage.cases import cases_for
from storage.models import Child, ChildBody, Placement, PlacementBody, Team, Visit, VisitBody, Worker
from storage.store import Store


def test_a_corrected_visit_counts_as_corrected_and_drafts_not_at_all(store: Store) -> None:
    with store.session() as session:
        team = Team(name="T")
        session.add(team)
        session.flush()
        worker = Worker(username="w", display_name="W", team_id=team.id)
        session.add(worker)
        session.flush()
        child = Child(id="c1", category="cic", team_id=team.id, worker_id=worker.id,
                      looked_after_since=date(2026, 1, 5))
        store.write(session, child, ChildBody(first_name="A", last_name="B"))
        store.write(session, Placement(child_id="c1", placement_type="U6", start=date(2026, 1, 5)), PlacementBody())

        def visit(vid: str, day: int, status: str, seen: bool = True, supersedes: str | None = None) -> None:
            store.write(session, Visit(id=vid, child_id="c1", worker_id=worker.id, status=status, seen=seen,
                                       visited_at=datetime(2026, 2, day, 12, tzinfo=UTC), supersedes=supersedes),
                        VisitBody())

        visit("first", 2, "submitted")  # recorded as seen ...
        visit("fix", 2, "submitted", seen=False, supersedes="first")  # ... corrected: the child was not seen
        visit("draft", 9, "draft")
        visit("second", 16, "signed_off")
    with store.session() as session:
        (case,) = cases_for(session, session.exec(select(Child)))
    assert [(v.date, v.seen) for v in case.visits] == [(date(2026, 2, 2), False), (date(2026, 2, 16), True)]


def test_a_childs_agreement_to_fewer_visits_counts_only_in_a_long_term_foster_placement(store: Store) -> None:
    # reg 28(3A) speaks of a long-term foster placement: the same agreement in a children's home is ignored.
    with store.session() as session:
        team = Team(name="T")
        session.add(team)
        session.flush()
        for child_id, placement_type in (("fostered", "U4"), ("in_a_home", "K2")):
            child = Child(id=child_id, category="cic", team_id=team.id, looked_after_since=date(2024, 1, 8))
            store.write(session, child, ChildBody(first_name="A", last_name="B"))
            store.write(session, Placement(child_id=child_id, placement_type=placement_type, start=date(2024, 1, 8),
                                           long_term=True, child_agreed_less_frequent=True), PlacementBody())
    with store.session() as session:
        cases = {c.id: c for c in cases_for(session, session.exec(select(Child)))}
    assert cases["fostered"].placements[0].child_agreed_less_frequent is True
    assert cases["in_a_home"].placements[0].child_agreed_less_frequent is False

"""Deliberately wrong records are caught with the codes the DfE's validators give them, by the validators on the
export and by Seen's own words where the worker records and on the manager's Returns page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from storage.child_forms import FormInvalid
from storage.missing import save_episode
from storage.models import (
    AuditEvent,
    CarePlan,
    Child,
    MissingEpisode,
    MissingEpisodeBody,
    Review,
    ReviewBody,
    Worker,
)
from storage.returns import export, rules
from storage.returns.common import age_on, load_caseload
from storage.returns.ssda903 import child_code
from storage.store import Store
from tests.conftest import DEMO_DAY
from tests.returns_support import POSTCODE_RULES, VALIDATOR_FALSE_POSITIVES, codes, dfe


def seed_wrong_records(store: Store) -> tuple[Child, str, Child]:
    """A child in care aged 6 or more with: a review without a participation code, a review saying PN0, a
    missing episode that ends before it starts and two that overlap; and a CP child reviewed before the plan
    started. Returns the child in care, their code in the return, and the CP child."""
    with store.session() as session:
        children = list(session.exec(select(Child).order_by(Child.id)))
        caseload = load_caseload(store, session, children, placement_bodies=False)
        in_care = next(c for c in children if c.category == "cic" and not caseload.missing[c.id]
                       and (age_on(caseload.bodies[c.id].date_of_birth, DEMO_DAY) or 0) >= 6)
        cp = next(c for c in children if c.category == "cp" and c.initial_conference is not None)
        plan = next(p for p in session.exec(select(CarePlan).where(CarePlan.child_id == cp.id,
                                                                   CarePlan.kind == "cp_plan")))

        def add(row: Review | MissingEpisode) -> None:
            store.write(session, row, ReviewBody() if isinstance(row, Review) else MissingEpisodeBody(),
                        action="create")

        day = DEMO_DAY
        add(Review(id="seed-no-code", child_id=in_care.id, kind="cic_review", held_on=day - timedelta(days=10)))
        add(Review(id="seed-pn0", child_id=in_care.id, kind="cic_review", held_on=day - timedelta(days=5),
                   participation="PN0"))
        add(MissingEpisode(id="seed-backwards", child_id=in_care.id, start=day - timedelta(days=30),
                           end=day - timedelta(days=35)))
        add(MissingEpisode(id="seed-first", child_id=in_care.id, start=day - timedelta(days=60),
                           end=day - timedelta(days=50)))
        add(MissingEpisode(id="seed-overlap", child_id=in_care.id, start=day - timedelta(days=55),
                           end=day - timedelta(days=52)))
        add(Review(id="seed-cp-early", child_id=cp.id, kind="cp_review", plan_id=plan.id,
                   held_on=plan.start - timedelta(days=3), participation="PN1", quorate=True, plan_continues=True))
        return in_care, child_code(in_care, caseload.bodies[in_care.id]), cp


def test_seeded_wrong_records_get_the_validators_codes_and_seens_words(module_demo_store: Store,
                                                                       tmp_path: Path) -> None:
    store = module_demo_store
    in_care, code, cp = seed_wrong_records(store)

    export(store, "903", by="admin", target=tmp_path / "903", year=2027)
    found = dfe("903", tmp_path / "903")
    ignore = POSTCODE_RULES | VALIDATOR_FALSE_POSITIVES
    assert codes(found, child=code, ignore=ignore) == {"167", "440", "567", "574"}
    assert codes(found, ignore=ignore) == {"167", "440", "567", "574"}  # nobody else's records fail
    export(store, "ssd", by="admin", target=tmp_path / "ssd")
    assert codes(dfe("cin", tmp_path / "ssd")) == {"8841"}
    assert codes(dfe("cin", tmp_path / "ssd"), child=cp.id) == {"8841"}

    # Seen's own words, for the same records, with the same codes.
    with store.session() as session:
        caseload = load_caseload(store, session, [in_care, cp], placement_bodies=False)
    said = {(p.record_id, p.code): p.words for p in rules.child_problems(caseload, in_care.id)}
    assert said[("seed-no-code", "167")] == ("This review has no participation code; the SSDA903 return will "
                                             "reject it.")
    assert "under four (PN0)" in said[("seed-pn0", "440")]
    assert "ends before it starts" in said[("seed-backwards", "567")]
    assert "still open or before it ended" in said[("seed-overlap", "574")]
    assert set(said) == {("seed-no-code", "167"), ("seed-pn0", "440"), ("seed-backwards", "567"),
                         ("seed-overlap", "574")}
    cp_said = rules.child_problems(caseload, cp.id)
    assert [(p.record_id, p.code) for p in cp_said] == [("seed-cp-early", "8841")]
    assert "before the plan started" in cp_said[0].words and "CIN census" in cp_said[0].words


def test_the_rules_speak_of_one_record_at_the_moment_of_recording() -> None:
    review = Review(id="r", child_id="c", kind="cic_review", held_on=DEMO_DAY, participation="PN3")
    toddler = DEMO_DAY - timedelta(days=2 * 365)
    assert [p.code for p in rules.review_problems(review, toddler)] == ["441"]
    assert rules.review_problems(review, DEMO_DAY - timedelta(days=9 * 365)) == []
    assert rules.review_problems(Review(id="s", child_id="c", kind="cic_review", scheduled_for=DEMO_DAY), None) == []
    cancelled = Review(id="x", child_id="c", kind="cic_review", held_on=DEMO_DAY, cancelled=True)
    assert rules.review_problems(cancelled, toddler) == []  # a cancelled review is not reported as held
    open_now = MissingEpisode(id="a", child_id="c", start=DEMO_DAY - timedelta(days=3))
    later = MissingEpisode(id="b", child_id="c", start=DEMO_DAY - timedelta(days=1), end=DEMO_DAY)
    assert [(p.record_id, p.code) for p in rules.missing_problems([later, open_now])] == [("b", "574")]


def test_recording_an_overlapping_missing_episode_is_refused_in_the_returns_words(module_demo_store: Store) -> None:
    store = module_demo_store
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        taken = set(session.exec(select(MissingEpisode.child_id)))
        child = [c for c in session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == "cic"))
                 if c.id not in taken][-1]
    save_episode(store, ben, child.id, {"start": "2026-10-01", "end": "2026-10-05"}, today=DEMO_DAY)
    with pytest.raises(FormInvalid) as refused:
        save_episode(store, ben, child.id, {"start": "2026-10-03", "end": "2026-10-04"}, today=DEMO_DAY)
    assert "the SSDA903 return will reject overlapping episodes" in refused.value.problems["start"]
    save_episode(store, ben, child.id, {"start": "2026-10-06", "end": "2026-10-07"}, today=DEMO_DAY)  # after: fine
    with store.session() as session:
        assert len(session.exec(select(MissingEpisode).where(MissingEpisode.child_id == child.id)).all()) == 2
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "denied", AuditEvent.child_id == child.id,
                                                     AuditEvent.kind == "missing_episode")).first() is not None

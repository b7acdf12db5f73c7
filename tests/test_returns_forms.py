"""The review and placement forms of the child's page, in storage: the returns' rules speak when a review or
placement is recorded (refused, or saved once confirmed), each form is held once however often it is sent, the
review clock moves by itself, and the SSDA903 export then carries what was recorded."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from storage.child_forms import FormInvalid
from storage.child_view import child_view
from storage.importer import ImportRejected, import_text
from storage.models import AuditEvent, CarePlan, Child, Placement, Review, Worker
from storage.placements import record_placement
from storage.returns import export
from storage.returns.common import age_on
from storage.returns.ssda903 import child_code
from storage.reviews import record_review
from storage.store import Store
from storage.submissions import new_key
from tests.conftest import DEMO_DAY
from tests.returns_support import POSTCODE_RULES, VALIDATOR_FALSE_POSITIVES, YEAR, codes, dfe


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ben_and_child(store: Store, category: str, *, nth: int = 0, worker: str = "ben") -> tuple[Worker, Child]:
    """A worker (Ben), and the nth of their children of this category aged four or more."""
    with store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == worker)).one()
        children = [c for c in session.exec(select(Child).where(Child.worker_id == ben.id, Child.category == category)
                                            .order_by(Child.id))
                    if (age_on(store.opened(c).body.date_of_birth, DEMO_DAY) or 0) >= 4]
        return ben, children[nth]


def denied(store: Store, child_id: str, kind: str) -> int:
    with store.session() as session:
        return len(session.exec(select(AuditEvent).where(AuditEvent.action == "denied", AuditEvent.kind == kind,
                                                         AuditEvent.child_id == child_id)).all())


def reviews_of(store: Store, child_id: str) -> list[Review]:
    with store.session() as session:
        return list(session.exec(select(Review).where(Review.child_id == child_id, col(Review.submission_key)
                                                      .is_not(None))))


def test_a_review_speaks_the_returns_rules_and_is_held_once_and_moves_the_review_clock(
        module_demo_store: Store) -> None:
    store = module_demo_store
    ben, child = ben_and_child(store, "cic")
    due = {c.clock: c.due for c in child_view(store, ben, child.id, on=DEMO_DAY).clocks}
    day = DEMO_DAY - timedelta(days=1)
    form: dict[str, Any] = {"kind": "cic_review", "held_on": day.isoformat(), "cancelled": "no",
                            "submission_key": new_key()}

    with pytest.raises(FormInvalid) as asked:  # no participation code: confirm first, nothing stored or refused
        record_review(store, ben, child.id, form, today=DEMO_DAY)
    assert asked.value.problems["participation"] == ("This review has no participation code; the SSDA903 return "
                                                     "will reject it.")
    assert "returns_confirmed" in asked.value.problems
    assert reviews_of(store, child.id) == [] and denied(store, child.id, "review") == 0

    with pytest.raises(FormInvalid) as refused:  # PN0 for a child of four or more: refused, audited
        record_review(store, ben, child.id, {**form, "participation": "PN0"}, today=DEMO_DAY)
    assert "says the child was under four (PN0)" in refused.value.problems["participation"]
    assert reviews_of(store, child.id) == [] and denied(store, child.id, "review") == 1

    with pytest.raises(FormInvalid) as wrong:  # a code not on the list is the form's own check
        record_review(store, ben, child.id, {**form, "participation": "PN9"}, today=DEMO_DAY)
    assert wrong.value.problems == {"participation": "Choose how the child took part, PN0 to PN7."}

    saved = record_review(store, ben, child.id, {**form, "participation": "PN1"}, today=DEMO_DAY)
    again = record_review(store, ben, child.id, {**form, "participation": "PN1"}, today=DEMO_DAY)  # a double tap
    assert again.id == saved.id and len(reviews_of(store, child.id)) == 1
    assert (saved.kind, saved.held_on, saved.participation) == ("cic_review", day, "PN1")
    moved = {c.clock: c.due for c in child_view(store, ben, child.id, on=DEMO_DAY).clocks}
    assert moved["cic_review"] > due["cic_review"] and moved["cic_review"] > day  # timed from the new review
    with store.session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.kind == "review", AuditEvent.record_id == saved.id,
                                                     AuditEvent.action == "create")).one().worker_id == ben.id

    # Confirmed, a review with no code yet is saved, and the manager's Returns page lists it.
    later = {**form, "held_on": DEMO_DAY.isoformat(), "submission_key": new_key(), "returns_confirmed": "yes"}
    unknown = record_review(store, ben, child.id, later, today=DEMO_DAY)
    assert unknown.participation is None
    from storage.returns.rules import problems_by_child
    with store.session() as session:
        amara = session.exec(select(Worker).where(Worker.username == "amara")).one()
    listed = {(p.record_id, p.code) for c in problems_by_child(store, amara) for p in c.problems}
    assert (unknown.id, "167") in listed and (saved.id, "167") not in listed


def test_a_cp_review_asks_quorate_and_plan_continues_and_warns_before_the_plan(module_demo_store: Store) -> None:
    store = module_demo_store
    with store.session() as session:
        child = session.exec(select(Child).where(Child.category == "cp", col(Child.initial_conference).is_not(None),
                                                 col(Child.worker_id).is_not(None)).order_by(Child.id)).first()
        assert child is not None and child.initial_conference is not None
        ben = session.get(Worker, child.worker_id)
        plan = session.exec(select(CarePlan).where(CarePlan.child_id == child.id, CarePlan.kind == "cp_plan")
                            .order_by(col(CarePlan.start))).first()
        assert ben is not None and plan is not None
    form = {"kind": "cp_review", "held_on": plan.start.isoformat(), "cancelled": "no",
            "submission_key": new_key()}
    with pytest.raises(FormInvalid) as missing:
        record_review(store, ben, child.id, form, today=DEMO_DAY)
    assert set(missing.value.problems) == {"quorate", "plan_continues"}
    form |= {"quorate": "yes", "plan_continues": "no"}
    with pytest.raises(FormInvalid) as early:  # on the day the plan started: the CIN census rejects it
        record_review(store, ben, child.id, form, today=DEMO_DAY)
    assert "on or before the plan started" in early.value.problems["held_on"]
    saved = record_review(store, ben, child.id, {**form, "returns_confirmed": "yes"}, today=DEMO_DAY)
    assert (saved.quorate, saved.plan_continues, saved.participation) == (True, False, None)
    assert saved.plan_id is not None
    # A cancelled review keeps the day it was to be held, and is no held review.
    cancelled = record_review(store, ben, child.id, {"kind": "cp_review", "held_on": DEMO_DAY.isoformat(),
                                                     "cancelled": "yes", "submission_key": new_key()},
                              today=DEMO_DAY)
    assert (cancelled.cancelled, cancelled.held_on, cancelled.scheduled_for) == (True, None, DEMO_DAY)


def test_placements_end_and_start_with_the_returns_words_once_each_and_the_903_carries_them(
        module_demo_store: Store, tmp_path: Path) -> None:
    store = module_demo_store
    ben, child = ben_and_child(store, "cic", nth=1)
    with store.session() as session:
        current = session.exec(select(Placement).where(Placement.child_id == child.id, col(Placement.end).is_(None))
                               ).one()
    end = DEMO_DAY - timedelta(days=20)
    ending: dict[str, Any] = {"action": "end", "end": (current.start - timedelta(days=1)).isoformat(),
                              "change_reason": "CHILD", "submission_key": new_key()}
    with pytest.raises(FormInvalid) as backwards:
        record_placement(store, ben, child.id, ending, today=DEMO_DAY)
    assert "before it starts" in backwards.value.problems["end"] and denied(store, child.id, "placement") == 1

    starting: dict[str, Any] = {"action": "start", "placement_type": "U4", "start": end.isoformat(),
                                "provider_code": "PR4", "urn": "sc654321", "provider": "Fictional Fostering",
                                "postcode": "tw1 3aa", "submission_key": new_key()}
    with pytest.raises(FormInvalid) as still_open:
        record_placement(store, ben, child.id, starting, today=DEMO_DAY)
    assert "has not ended. End it first" in still_open.value.problems["action"]

    with pytest.raises(FormInvalid) as no_reason:  # no reason for the change: confirm first
        record_placement(store, ben, child.id, {**ending, "end": end.isoformat(), "change_reason": ""},
                         today=DEMO_DAY)
    assert "no reason for the change" in no_reason.value.problems["change_reason"]
    ending["end"] = end.isoformat()
    ended = record_placement(store, ben, child.id, ending, today=DEMO_DAY)
    assert ended.id == current.id and (ended.end, ended.change_reason) == (end, "CHILD")
    assert record_placement(store, ben, child.id, ending, today=DEMO_DAY).id == current.id  # sent twice: once

    with pytest.raises(FormInvalid) as temporary:  # a temporary placement has no provider in the return
        record_placement(store, ben, child.id, {**starting, "placement_type": "T0", "urn": ""}, today=DEMO_DAY)
    assert "Leave the provider code blank" in temporary.value.problems["provider_code"]
    with pytest.raises(FormInvalid) as no_urn:
        record_placement(store, ben, child.id, {**starting, "urn": ""}, today=DEMO_DAY)
    assert "no Ofsted URN" in no_urn.value.problems["urn"]
    new = record_placement(store, ben, child.id, starting, today=DEMO_DAY)
    assert record_placement(store, ben, child.id, starting, today=DEMO_DAY).id == new.id
    with store.session() as session:
        assert len(session.exec(select(Placement).where(Placement.child_id == child.id,
                                                        Placement.start == end)).all()) == 1
        assert store.opened(new).body.postcode == "TW1 3AA"
    assert (new.placement_type, new.provider_code, new.urn) == ("U4", "PR4", "SC654321")
    assert child_view(store, ben, child.id, on=DEMO_DAY).placement.type_code == "U4"  # type: ignore[union-attr]

    record_review(store, ben, child.id, {"kind": "cic_review", "held_on": DEMO_DAY.isoformat(), "cancelled": "no",
                                         "participation": "PN2", "submission_key": new_key()}, today=DEMO_DAY)
    export(store, "903", by="admin", target=tmp_path / "903", year=YEAR)
    with store.session() as session:
        code = child_code(child, store.opened(session.get(Child, child.id)).body)  # type: ignore[arg-type]
    episodes = [r for r in rows(tmp_path / "903" / "episodes.csv") if r["CHILD"] == code]
    moved = [(e["PLACE"], e["PLACE_PROVIDER"], e["URN"], e["DEC"], e["REC"], e["REASON_PLACE_CHANGE"])
             for e in episodes[-2:]]
    assert moved == [(current.placement_type, current.provider_code, current.urn, f"{end:%d/%m/%Y}", "X1", "CHILD"),
                     ("U4", "PR4", "SC654321", "", "", "")]
    assert episodes[-1]["DECOM"] == f"{end:%d/%m/%Y}" and episodes[-1]["RNE"] == "P"
    assert [r["REVIEW_CODE"] for r in rows(tmp_path / "903" / "reviews.csv")
            if r["CHILD"] == code and r["REVIEW"] == f"{DEMO_DAY:%d/%m/%Y}"] == ["PN2"]
    # The DfE's validator finds nothing wrong with what the forms recorded.
    assert codes(dfe("903", tmp_path / "903"), child=code, ignore=POSTCODE_RULES | VALIDATOR_FALSE_POSITIVES) == set()


def test_the_import_refuses_what_the_forms_refuse(module_demo_store: Store) -> None:
    header = ("child_ref,first_name,last_name,date_of_birth,category,team,worker,looked_after_since,legal_status,"
              "placement_type,placement_start,placement_provider_code,last_review_kind,last_review_date,"
              "last_review_participation")
    row = (f"IMP9,Test,Child,{date(2015, 1, 1)},cic,Team A,ben,2026-01-01,C2,T0,2026-01-01,PR1,cic_review,"
           "2026-06-01,PN0")
    with pytest.raises(ImportRejected) as rejected:
        import_text(module_demo_store, f"{header}\n{row}\n", today=DEMO_DAY)
    said = {(e.column, e.reason) for e in rejected.value.errors}
    assert any(column == "placement_provider_code" and "Leave the provider code blank" in message
               for column, message in said)
    assert any(column == "last_review_participation" and "(PN0)" in message for column, message in said)

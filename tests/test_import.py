"""Importing a caseload from a case management system export: all or nothing, and never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import func, select

from storage.importer import ImportRejected, import_csv
from storage.models import Child, Placement, Review, Visit
from storage.store import Store
from tests.conftest import DEMO_DAY

DATA = Path(__file__).parent / "data"


def _counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {m.__name__: session.exec(select(func.count()).select_from(m)).one()
                for m in (Child, Placement, Visit, Review)}


@pytest.fixture
def workers_store(demo_store: Store) -> Store:  # the demo's workers (ben, ...) do the imported work
    return demo_store


def test_a_good_file_imports_children_placements_visits_and_reviews(workers_store: Store) -> None:
    before = _counts(workers_store)
    summary = import_csv(workers_store, DATA / "caseload_good.csv", today=DEMO_DAY)
    after = _counts(workers_store)
    assert after["Child"] == before["Child"] + 3
    assert after["Placement"] == before["Placement"] + 1
    assert after["Visit"] == before["Visit"] + 2
    assert after["Review"] == before["Review"] + 2
    assert "3 children" in str(summary)
    with workers_store.session() as session:
        imported = [workers_store.opened(c) for c in session.exec(select(Child).where(Child.ref_hash != ""))]
        names = {c.body.name for c in imported}
        assert {"Rowan Tumbleweed", "Skye Puddingstone", "Tam Gingernut"} <= names
        skye = next(c for c in imported if c.body.first_name == "Skye")
        assert str(skye.body.date_of_birth) == "2019-08-12"  # DD/MM/YYYY understood
        assert skye.row.initial_conference.isoformat() == "2026-08-20"


def test_importing_the_same_file_twice_adds_nothing(workers_store: Store) -> None:
    import_csv(workers_store, DATA / "caseload_good.csv", today=DEMO_DAY)
    once = _counts(workers_store)
    summary = import_csv(workers_store, DATA / "caseload_good.csv", today=DEMO_DAY)
    assert _counts(workers_store) == once
    assert "nothing new" in str(summary)


def test_a_bad_file_changes_nothing_and_names_every_bad_row(workers_store: Store) -> None:
    before = _counts(workers_store)
    with pytest.raises(ImportRejected) as caught:
        import_csv(workers_store, DATA / "caseload_bad.csv", today=DEMO_DAY)
    assert _counts(workers_store) == before
    problems = {(e.line, e.column) for e in caught.value.errors}
    assert (3, "date_of_birth") in problems  # 2014-13-45 is not a date
    assert (4, "category") in problems  # looked_after is not a category
    assert {(5, "legal_status"), (5, "worker"), (5, "looked_after_since"), (5, "placement_type"),
            (5, "distance_km")} <= problems
    assert (6, "child_ref") in problems  # LCS0101 twice
    assert not any(line == 2 for line, _ in problems)  # the good row is not blamed
    message = str(caught.value)
    assert "Nothing was imported" in message and "line 4, column category" in message


def test_a_file_with_a_missing_or_unknown_column_is_refused(workers_store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("child_ref,first_name,category,team,favourite_colour\nX1,Al,cin,T,blue\n")
    with pytest.raises(ImportRejected) as caught:
        import_csv(workers_store, bad, today=DEMO_DAY)
    assert {(e.line, e.column) for e in caught.value.errors} == {(1, "last_name")}


def test_only_a_long_term_foster_placement_can_record_the_childs_agreement_to_fewer_visits(
        workers_store: Store, tmp_path: Path) -> None:
    header = ("child_ref,first_name,last_name,category,team,worker,looked_after_since,placement_type,"
              "placement_start,long_term,child_agreed_less_frequent\n")
    home = tmp_path / "home.csv"
    home.write_text(header + "LCS0900,Kit,Marble,cic,Imported Team,ben,2024-01-08,K2,2024-01-08,yes,yes\n")
    before = _counts(workers_store)
    with pytest.raises(ImportRejected) as caught:
        import_csv(workers_store, home, today=DEMO_DAY)
    assert _counts(workers_store) == before
    (error,) = caught.value.errors
    assert (error.line, error.column) == (2, "child_agreed_less_frequent")
    assert "long-term foster placement" in str(caught.value)
    fostered = tmp_path / "fostered.csv"
    fostered.write_text(header + "LCS0901,Kit,Marble,cic,Imported Team,ben,2024-01-08,U4,2024-01-08,yes,yes\n")
    import_csv(workers_store, fostered, today=DEMO_DAY)
    with workers_store.session() as session:
        placement = session.exec(select(Placement).where(Placement.placement_type == "U4",
                                                         Placement.child_agreed_less_frequent)).one()
        assert placement.long_term is True

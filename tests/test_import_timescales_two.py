"""Importing the facts of timescales part two: care leavers, plan visit frequencies, missing episodes and
health assessments arrive as records whose clocks are right, and a bad value imports nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from storage.cases import cases_for
from storage.importer import ImportRejected, import_text
from storage.models import Child, MissingEpisode
from storage.store import Store
from storage.timescales import clocks_for
from tests.conftest import DEMO_DAY

HEADER = ("child_ref,first_name,last_name,category,team,worker,date_of_birth,looked_after_since,cin_plan_start,"
          "care_leaver_since,placement_type,placement_start,plan_visit_every,missing_start,missing_end,"
          "return_interview,health_assessment_kind,health_assessment_date\n")
GOOD = HEADER + (
    "L1,Robin,Hazelnut,care_leaver,Leaving Care,ben,2008-05-01,,,2026-10-01,H5,2026-11-16,,,,,,\n"
    "N1,Fen,Marigold,cin,Leaving Care,ben,2015-02-02,,2026-10-01,,,,5 working days,2026-11-18,2026-11-20,,,\n"
    "H1,Ash,Brambling,cic,Leaving Care,ben,2022-01-10,2026-06-01,,,U4,2026-06-01,,,,,initial,2026-06-20\n"
)


@pytest.fixture
def workers_store(demo_store: Store) -> Store:
    return demo_store


def clocks_of(store: Store, ref: str) -> dict[str, date]:
    with store.session() as session:
        child = session.exec(select(Child).where(Child.ref_hash == store.ref_hash(ref))).one()
        case = cases_for(session, [child])[0]
    return {c.clock: c.due for c in clocks_for(case, DEMO_DAY)}


def test_imported_new_facts_start_the_right_clocks(workers_store: Store) -> None:
    import_text(workers_store, GOOD, today=DEMO_DAY)
    leaver = clocks_of(workers_store, "L1")
    # Moved in on Mon 16 Nov 2026 with no visit since: by Mon 23 Nov, sooner than 2 months from 1 Oct (1 Dec).
    assert leaver["pa_visit"] == date(2026, 11, 23)
    assert leaver["pathway_plan_review"] == date(2027, 4, 1)  # 6 months after leaving care on 1 Oct
    weekly = clocks_of(workers_store, "N1")
    # No visit since the plan began on Thu 1 Oct: 5 working days is Thu 8 Oct.
    assert weekly["cin_visit"] == date(2026, 10, 8)
    assert weekly["return_home_interview"] == date(2026, 11, 23)  # back Fri 20 Nov + 72 hours
    health = clocks_of(workers_store, "H1")
    assert "initial_health_assessment" not in health
    assert health["review_health_assessment"] == date(2026, 12, 20)  # under five on 20 Jun: 6 months
    with workers_store.session() as session:
        assert session.exec(select(MissingEpisode)).first() is not None
    # Importing again adds nothing.
    assert "nothing new" in str(import_text(workers_store, GOOD, today=DEMO_DAY))


@pytest.mark.parametrize(("row", "column"), [
    ("X1,A,B,care_leaver,T,ben,2008-05-01,,,,,,,,,,,\n", "care_leaver_since"),
    ("X1,A,B,cin,T,ben,2015-02-02,,2026-10-01,,,,weekly,,,,,\n", "plan_visit_every"),
    ("X1,A,B,cin,T,ben,2015-02-02,,2026-10-01,,,,,2026-11-18,2026-11-10,,,\n", "missing_end"),
    ("X1,A,B,cin,T,ben,2015-02-02,,2026-10-01,,,,,2026-11-18,2026-11-19,2026-11-17,,\n", "return_interview"),
    ("X1,A,B,cic,T,ben,2022-01-10,2026-06-01,,,U4,2026-06-01,,,,,annual,2026-06-20\n", "health_assessment_kind"),
])
def test_a_bad_new_fact_imports_nothing_and_names_the_column(workers_store: Store, row: str, column: str) -> None:
    with workers_store.session() as session:
        before = len(list(session.exec(select(Child))))
    with pytest.raises(ImportRejected) as caught:
        import_text(workers_store, HEADER + row, today=DEMO_DAY)
    assert column in {e.column for e in caught.value.errors}
    with workers_store.session() as session:
        assert len(list(session.exec(select(Child)))) == before

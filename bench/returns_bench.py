"""The SSD export (`seen export ssd`) of a whole authority: 100,000 children with their visits and reviews.

The store (SQLite, sealed child records) is built before the clock starts: children of every category, each
with a year of visits and their reviews; children in care with a placement. What is timed is `export(...,
"ssd")` end to end: the caseload read, every child's body opened, the tables built and written as CSV. The
baseline is reading the same visit and review rows with one plain SELECT each, so the ratio is what the export
adds to reading its data. Both are CPU seconds of this process (the export and SQLite run in it), steadier than
the wall clock on a shared 2-core machine; `export_ssd_100k_wall` is the wall-clock time, for the record.

Target: under 30 s for 100,000 children.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from bench import Figure, benchmark
from storage.models import (
    Child,
    ChildBody,
    Placement,
    PlacementBody,
    Review,
    Role,
    Team,
    Visit,
    Worker,
    table_of,
)
from storage.returns import export
from storage.store import Store

CHILDREN = {"tiny": 200, "full": 100_000}
VISITS_EACH = 6  # a year of visits, about every eight weeks (children in need and in care alike)
REVIEWS_EACH = 2
TARGET_SECONDS = 30.0
ON = date(2026, 11, 23)
CATEGORIES = ("cic", "cin", "cp", "case_managed")


def _ids(rng: random.Random, n: int) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def build_store(path: Path, children: int, seed: int = 17) -> Store:
    """An authority's store of `children`, written with plain inserts (what is measured is the export)."""
    rng = random.Random(seed)
    store = Store.open(f"sqlite:///{path}", outbox=False)
    store.initialise_with_server_key(b"r" * 32)
    with store.session() as session:
        team = Team(name="Bench team")
        session.add(team)
        session.flush()
        worker = Worker(username="admin", display_name="Bench Admin", role=Role.admin.value, team_id=team.id)
        session.add(worker)
        session.flush()
        team_id, worker_id = team.id, worker.id
    child_rows: list[dict[str, Any]] = []
    visit_rows: list[dict[str, Any]] = []
    review_rows: list[dict[str, Any]] = []
    placement_rows: list[dict[str, Any]] = []
    for n, child_id in enumerate(_ids(rng, children)):
        category = CATEGORIES[n % len(CATEGORIES)]
        start = ON - timedelta(days=400 + n % 300)
        dob = ON - timedelta(days=365 * (2 + n % 15) + n % 365)
        child = Child(id=child_id, category=category, team_id=team_id, worker_id=worker_id, birth_year=dob.year,
                      legal_status="C2" if category == "cic" else "S17",
                      looked_after_since=start if category == "cic" else None,
                      initial_conference=start if category == "cp" else None,
                      cin_plan_start=start if category == "cin" else None)
        store.seal(child, ChildBody(first_name=f"Child{n}", last_name="Bench", date_of_birth=dob, gender="Female",
                                    ethnicity="White British", home_postcode="ZZ99 1AA", external_ref=f"B{n}"))
        child_rows.append(child.model_dump())
        for v, visit_id in enumerate(_ids(rng, VISITS_EACH)):
            at = datetime(ON.year, ON.month, ON.day, 10, tzinfo=UTC) - timedelta(days=7 + 56 * v)
            seen = (n + v) % 20 != 0
            visit_rows.append({"id": visit_id, "child_id": child_id, "worker_id": worker_id, "visited_at": at,
                               "seen": seen, "seen_alone": seen and v % 3 != 0, "bedroom_seen": v % 2 == 0,
                               "status": "signed_off", "created_at": at, "updated_at": at, "sealed": b""})
        kind = {"cic": "cic_review", "cp": "cp_review", "cin": "cin_review"}.get(category, "case_managed_review")
        for r, review_id in enumerate(_ids(rng, REVIEWS_EACH)):
            held = ON - timedelta(days=30 + 182 * r)
            review_rows.append({"id": review_id, "child_id": child_id, "kind": kind, "scheduled_for": held,
                                "held_on": held, "participation": "PN1", "cancelled": False,
                                "quorate": True if kind == "cp_review" else None, "sealed": b"",
                                "revision": 1, "field_clocks": "{}", "updated_at": datetime.now(UTC)})
        if category == "cic":
            placement = Placement(id=_ids(rng, 1)[0], child_id=child_id, placement_type="U4", start=start,
                                  provider_code="PR1", urn="SC000001")
            store.seal(placement, PlacementBody(postcode="ZZ99 2BB"))
            placement_rows.append(placement.model_dump())
    with store.engine.begin() as connection:
        for model, rows in ((Child, child_rows), (Visit, visit_rows), (Review, review_rows),
                            (Placement, placement_rows)):
            for at in range(0, len(rows), 5000):
                connection.execute(insert(table_of(model)), rows[at:at + 5000])
    return store


def read_rows(store: Store) -> float:
    """The baseline: the visits and reviews read with one plain SELECT each (CPU seconds)."""
    started = time.process_time()
    with store.engine.connect() as connection:
        for model in (Visit, Review):
            connection.execute(select(table_of(model))).fetchall()
    return time.process_time() - started


@benchmark("export_ssd_100k")
def export_ssd(size: str) -> list[Figure]:
    children = CHILDREN[size]
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "seen.db", children)
        baseline = read_rows(store)
        started, cpu = time.perf_counter(), time.process_time()
        made = export(store, "ssd", by="admin", target=Path(tmp) / "ssd")
        seconds, wall = time.process_time() - cpu, time.perf_counter() - started
        store.engine.dispose()
    assert made.children == children
    return [Figure("export_ssd_100k", seconds, "s", baseline=baseline, ratio=seconds / baseline,
                   target=TARGET_SECONDS if size == "full" else None),
            Figure("export_ssd_100k_wall", wall, "s")]

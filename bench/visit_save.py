"""Saving a visit: what sealing costs on the write path a worker waits for when they tap "Submit".

One save is one transaction on SQLite, as `Store.write` makes it: the visit row with its sealed body, its
sealed outbox entry and its audit event, committed. The baseline is the same write with every body kept
as plain JSON bytes (a sealer that only encodes), so the ratio is what AES-256-GCM adds. Sealed and plain
saves are interleaved, each into its own database, so a slow moment of the machine falls on both.

Target: the sealed median under 1.25 times the plain median.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import Figure, benchmark
from storage.models import Child, ChildBody, SafetyScore, Team, Visit, VisitBody, Worker, utcnow
from storage.store import Store

SAVES = {"tiny": 20, "full": 2000}
WARM_UP = {"tiny": 5, "full": 50}
TARGET_RATIO = 1.25


class PlainSealer:
    """The baseline: bodies stored as the JSON the sealer would have encrypted, not encrypted."""

    def seal(self, kind: str, record_id: str, body: dict[str, Any]) -> bytes:
        return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()

    def open(self, kind: str, record_id: str, sealed: bytes) -> dict[str, Any]:
        return json.loads(sealed)


def visit_body(n: int) -> VisitBody:
    """A realistic write-up: a few paragraphs of observations and analysis, the child's words, a scale."""
    return VisitBody(
        present="Foster carer; the child's younger brother",
        observations=("The bedroom was clean and personalised with posters and photos. " * 12) + str(n),
        analysis="The child appears settled and has a warm relationship with the carer. " * 8,
        child_words="I like it here because I have my own room and the dog sleeps on my bed.",
        worries="Contact with dad is inconsistent.", working_well="Settled at school; good attendance.",
        needs_to_happen="Arrange a life-story session.",
        safety_scale=[SafetyScore(who="Child", score=8), SafetyScore(who="Social worker", score=7)],
        actions=["Book a dental check-up"],
    )


def prepared_store(path: Path, plain: bool) -> tuple[Store, Worker, str]:
    store = Store.open(f"sqlite:///{path}", outbox=True)
    store.initialise_with_server_key(b"b" * 32)
    if plain:
        store._sealer = PlainSealer()  # type: ignore[assignment]  # the baseline's only difference
    with store.session() as session:
        team = Team(name="Bench team")
        worker = Worker(username="bench", display_name="Bench Worker", team_id=team.id)
        session.add(team)
        session.add(worker)
        session.flush()
        child = Child(category="cic", team_id=team.id, worker_id=worker.id)
        store.write(session, child, ChildBody(first_name="Bench", last_name="Child"), action="create")
    return store, worker, child.id


def save_visit(store: Store, worker: Worker, child_id: str, body: VisitBody) -> float:
    """One visit saved and committed; returns the seconds it took."""
    started = time.perf_counter()
    now = utcnow()
    with store.session() as session:
        visit = Visit(child_id=child_id, worker_id=worker.id, visited_at=now - timedelta(hours=1),
                      seen=True, seen_alone=True, bedroom_seen=True, status="submitted", written_up_at=now,
                      submitted_at=now)
        store.write(session, visit, body, actor=worker, action="submit")
    return time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


@benchmark("visit_save")
def visit_save(size: str) -> list[Figure]:
    saves, warm_up = SAVES[size], WARM_UP[size]
    full = size == "full"
    with tempfile.TemporaryDirectory() as tmp:
        sealed_store, sealed_worker, sealed_child = prepared_store(Path(tmp) / "sealed.db", plain=False)
        plain_store, plain_worker, plain_child = prepared_store(Path(tmp) / "plain.db", plain=True)
        sealed: list[float] = []
        plain: list[float] = []
        for n in range(warm_up + saves):
            body = visit_body(n)
            # Alternate which goes first, so neither always follows the other's commit.
            order = [(sealed_store, sealed_worker, sealed_child, sealed), (plain_store, plain_worker, plain_child, plain)]
            for store, worker, child_id, times in order if n % 2 else reversed(order):
                seconds = save_visit(store, worker, child_id, body)
                if n >= warm_up:
                    times.append(seconds)
        sealed_store.engine.dispose()
        plain_store.engine.dispose()
    ms = 1000.0
    median, base_median = statistics.median(sealed) * ms, statistics.median(plain) * ms
    p99, base_p99 = percentile(sealed, 0.99) * ms, percentile(plain, 0.99) * ms
    ratio = median / base_median
    return [
        Figure("visit_save_median", median, "ms", baseline=base_median, ratio=ratio),
        Figure("visit_save_p99", p99, "ms", baseline=base_p99, ratio=p99 / base_p99),
        Figure("visit_save_ratio", ratio, "x", target=TARGET_RATIO if full else None),
    ]

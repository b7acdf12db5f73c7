"""Sealed storage on SQLite and the real PostgreSQL: nothing identifying in the clear, nothing tampered
returned, passphrases that back off and can be changed, migrations that keep every row."""

from __future__ import annotations

import time

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import select

from storage import audit, sealing
from storage.cases import cases_for
from storage.db import alembic_config, make_engine, migrate
from storage.demo import CHILD_WORDS, NAME_GENDERS, create_demo
from storage.models import (
    CarePlanAction,
    Child,
    ChildBody,
    LifeStoryEntry,
    ManagedTeam,
    Photo,
    Placement,
    Team,
    Visit,
    Worker,
)
from storage.photos import open_photo
from storage.store import Locked, Store
from storage.timescales import clocks_for_all
from tests.conftest import DEMO_DAY


def _demo_secrets(store: Store) -> set[str]:
    """Every child's name, address and words as the demo wrote them."""
    secrets: set[str] = set(CHILD_WORDS)
    with store.session() as session:
        for child in session.exec(select(Child)):
            body = store.opened(child).body
            secrets |= {body.first_name + " " + body.last_name, body.last_name, body.home_address}
        for placement in session.exec(select(Placement)):
            secrets.add(store.opened(placement).body.address)
    return {s for s in secrets if s}


def _raw_database_bytes(store: Store) -> bytes:
    if store.engine.url.get_backend_name() == "sqlite":
        store.engine.dispose()  # flush the WAL into the file
        path = str(store.engine.url.database)
        raw = open(path, "rb").read()
        for suffix in ("-wal", "-shm"):
            try:
                raw += open(path + suffix, "rb").read()
            except FileNotFoundError:
                pass
        return raw
    chunks = []
    with store.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    chunks.append(bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode())
    return b"\n".join(chunks)


def test_the_raw_database_holds_none_of_the_childrens_names_addresses_or_words(demo_store: Store) -> None:
    secrets = _demo_secrets(demo_store)
    assert len(secrets) > 60
    raw = _raw_database_bytes(demo_store)
    assert len(raw) > 100_000
    leaked = [s for s in secrets if s.encode() in raw]
    assert leaked == []


def test_a_tampered_sealed_body_is_refused(demo_store: Store) -> None:
    with demo_store.session() as session:
        visit = session.exec(select(Visit).limit(1)).one()
        altered = bytearray(visit.sealed)
        altered[20] ^= 0xFF
        visit.sealed = bytes(altered)
        session.add(visit)
    with demo_store.session() as session:
        visit = session.get(Visit, visit.id)
        with pytest.raises(sealing.SealError, match="altered or belongs to another record"):
            demo_store.opened(visit)


def test_a_sealed_body_moved_to_another_child_is_refused(demo_store: Store) -> None:
    with demo_store.session() as session:
        first, second = session.exec(select(Child).limit(2)).all()
        second.sealed = first.sealed
        session.add(second)
    with demo_store.session() as session:
        with pytest.raises(sealing.SealError):
            demo_store.opened(session.get(Child, second.id))
        assert demo_store.opened(session.get(Child, first.id)).body.first_name


def _personal_store(db_url: str) -> Store:
    store = Store.open(db_url)
    store.initialise_with_passphrase("blue kettle on the hill")
    with store.session() as session:
        team = Team(name="Test team")
        session.add(team)
        session.flush()
        child = Child(id="c1", category="cic", team_id=team.id)
        store.write(session, child, ChildBody(first_name="Wilhelmina", last_name="Zebedee-Quince"))
    return store


def test_a_wrong_passphrase_is_refused_and_backs_off_even_after_a_restart(db_url: str) -> None:
    _personal_store(db_url).engine.dispose()
    store = Store(make_engine(db_url))
    assert store.locked
    with pytest.raises(Locked):
        _ = store.sealer
    # The moment is fixed: scrypt on a loaded machine can take longer than the first back-off (1 second).
    moment = time.time()
    with pytest.raises(sealing.WrongPassphrase):
        store.unlock("red kettle on the hill", now=lambda: moment)
    # A new process (a reopened store) still sees the back-off.
    again = Store(make_engine(db_url))
    with pytest.raises(sealing.TooSoon, match="Try again in"):
        again.unlock("blue kettle on the hill", now=lambda: moment + 0.5)
    assert again.locked
    again.unlock("blue kettle on the hill", now=lambda: moment + 5)
    with again.session() as session:
        assert again.opened(session.get(Child, "c1")).body.first_name == "Wilhelmina"


def test_changing_the_passphrase_keeps_every_record_readable_without_resealing(db_url: str) -> None:
    store = _personal_store(db_url)
    with store.session() as session:
        before = session.get(Child, "c1").sealed
    store.change_passphrase("blue kettle on the hill", "green teapot by the sea")
    reopened = Store(make_engine(db_url))
    with pytest.raises(sealing.WrongPassphrase):
        reopened.unlock("blue kettle on the hill")
    reopened.unlock("green teapot by the sea", now=lambda: time.time() + 5)
    with reopened.session() as session:
        child = session.get(Child, "c1")
        assert child.sealed == before
        assert reopened.opened(child).body.last_name == "Zebedee-Quince"


def test_a_locked_store_shows_nothing_identifying(db_url: str) -> None:
    _personal_store(db_url).engine.dispose()
    store = Store(make_engine(db_url))
    with store.session() as session:
        child = session.get(Child, "c1")
        assert child.category == "cic"  # clear columns still answer queries
        with pytest.raises(Locked, match="Unlock it with your passphrase"):
            store.opened(child)


def test_migrations_upgrade_an_empty_database(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"child", "placement", "visit", "wishes_and_feelings", "life_story_entry", "care_plan",
            "care_plan_action", "review", "worker", "team", "device", "audit_event", "outbox"} <= tables
    migrate(engine)  # running again changes nothing and does not fail
    engine.dispose()


def test_migrations_upgrade_a_populated_database_keeping_every_row(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine)
    store.initialise_with_server_key(b"m" * 32)
    create_demo(store, today=DEMO_DAY)
    with store.session() as session:
        children_before = len(session.exec(select(Child)).all())
        visits_before = len(session.exec(select(Visit)).all())
    # Back to the first schema with the rows in it (today's models cannot write that schema: it lacks columns
    # added since), then up again.
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert "submission_key" not in {c["name"] for c in inspect(engine).get_columns("visit")}
    migrate(engine, "head")  # one head: what an engineer's plain `alembic upgrade head` reaches
    with store.session() as session:
        assert len(session.exec(select(Child)).all()) == children_before
        assert len(session.exec(select(Visit)).all()) == visits_before
        assert store.opened(session.exec(select(Child)).first()).body.first_name
        assert audit.verify(session).ok
    engine.dispose()


def test_the_demo_caseload_is_deterministic_and_covers_every_category(tmp_path) -> None:
    def snapshot(name: str) -> list[tuple]:
        store = Store.open(f"sqlite:///{tmp_path / name}")
        store.initialise_with_server_key(b"d" * 32)
        create_demo(store, today=DEMO_DAY)
        with store.session() as session:
            return sorted((c.id, c.category, store.opened(c).body.name) for c in session.exec(select(Child)))

    first = snapshot("a.db")
    assert first == snapshot("b.db")
    assert 35 <= len(first) <= 45
    assert {c[1] for c in first} == {"cin", "cp", "cic", "case_managed", "care_leaver"}


def test_the_demo_caseload_shows_what_a_team_meets(store: Store) -> None:
    """Every screen has something true to show: two teams with their managers, fostering, residential, home and
    supported placements near and far, children overdue and not seen alone (with why), open and done actions,
    and life-story photos that open."""
    counts = create_demo(store, today=DEMO_DAY)
    with store.session() as session:
        teams = list(session.exec(select(Team)))
        workers = list(session.exec(select(Worker)))
        assert len(teams) == 2
        assert sorted(w.role for w in workers).count("practitioner") == 4
        assert {m.team_id for m in session.exec(select(ManagedTeam))} == {t.id for t in teams}
        placements = list(session.exec(select(Placement)))
        kinds = {p.placement_type[0] for p in placements}
        assert {"U", "K", "P", "H"} <= kinds  # fostering, a children's home, with a parent, supported living
        assert any(p.out_of_area and (p.distance_km or 0) > 300 for p in placements)
        assert any(not p.out_of_area for p in placements)
        visits = list(session.exec(select(Visit)))
        not_alone = [v for v in visits if v.seen and v.seen_alone is False]
        assert not_alone and all(v.not_alone_reason for v in not_alone)
        # Written up after the visit, never after the demo's today.
        assert all(v.visited_at <= v.written_up_at for v in visits if v.written_up_at)
        assert all(v.written_up_at.date() <= DEMO_DAY for v in visits if v.written_up_at)
        # A child's recorded gender does not contradict the name the demo gave them.
        for child in session.exec(select(Child)):
            body = store.opened(child).body
            assert NAME_GENDERS.get(body.first_name, body.gender) == body.gender, body.first_name
        actions = list(session.exec(select(CarePlanAction)))
        statuses = {a.status for a in actions}
        assert "done" in statuses and statuses & {"open", "in_progress"}
        # A done action was done by today: none is completed in the future.
        assert all(a.completed_on <= DEMO_DAY for a in actions if a.completed_on)
        clocks = clocks_for_all(cases_for(session, session.exec(select(Child))), DEMO_DAY)
        assert {c.status for c in clocks} >= {"overdue", "on_track"}
        photos = list(session.exec(select(Photo)))
        assert len(photos) == counts["photos"] > 0
        entry = session.get(LifeStoryEntry, photos[0].record_id)
        assert entry is not None and entry.child_id == photos[0].child_id
        assert open_photo(store, photos[0])[:2] == b"\xff\xd8"  # a JPEG, sealed and opened again

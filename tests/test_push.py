"""Push notifications end to end: a push service on loopback, devices with their own keys, the scheduler.

What a worker and a manager depend on: the right alerts reach the right people, once (not again on the
next run, nor after a restart), signed with the server's VAPID key, readable only by the device, and never
naming a child; a gone subscription is removed; a busy push service is retried.
"""

from __future__ import annotations

import asyncio
import re
import time as clock
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from nicegui.testing.user import User
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from pwa import push
from storage import notify, push_delivery
from storage.cases import cases_for
from storage.demo import FIRST_NAMES, SURNAMES
from storage.models import (
    Child,
    ChildBody,
    ManagedTeam,
    Placement,
    PlacementBody,
    PushDelivery,
    PushSubscription,
    Review,
    ReviewBody,
    Role,
    SentAlert,
    Team,
    Visit,
    VisitBody,
    Worker,
)
from storage.store import Store
from storage.timescales import add_working_days, clocks_for_all
from storage.timescales.calendar import LONDON, today_in_england
from tests.conftest import DEMO_DAY, sign_in
from tests.push_service import Device, PushService, check_vapid
from tests.support import SERVER_KEY

TITLE = re.compile(r"^(Visit|Review|Review conference|Initial conference|Assessment|Return interview|Health assessment) "
                   r"(due today|overdue|due \w{3} \d{1,2} \w{3}) — ([A-Z]\.){1,2}$")


@pytest.fixture(autouse=True)
def _no_background_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests run the scheduler themselves, at a moment they choose.
    monkeypatch.setenv("SEEN_SCHEDULER_MINUTES", "0")
    monkeypatch.delenv("SEEN_NOTIFY_HOURS", raising=False)


@pytest.fixture
def service() -> Iterator[PushService]:
    s = PushService()
    yield s
    s.close()


def morning(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), LONDON)


def expected_alerts(store: Store, worker: Worker, day: date) -> set[tuple[str, str, str]]:
    """(child, clock, stage) a worker should hear about, straight from the timescales engine."""
    soon = add_working_days(day, 3)
    with store.session() as session:
        children = list(session.exec(select(Child).where(Child.worker_id == worker.id)))
        clocks = clocks_for_all(cases_for(session, children), day)
    out = set()
    for c in clocks:
        stage = "overdue" if c.due < day else "due_today" if c.due == day else "due_in_3" if c.due <= soon else None
        if stage:
            out.add((c.child, c.clock, stage))
    return out


def names_of_children(store: Store) -> set[str]:
    with store.session() as session:
        bodies = [store.opened(c).body for c in session.exec(select(Child))]
    return {n for b in bodies for n in (b.first_name, b.last_name, b.preferred_name) if n} | set(FIRST_NAMES) | set(
        SURNAMES)


def assert_names_no_child(payload: dict, names: set[str]) -> None:
    words = set(re.findall(r"[A-Za-z]+", " ".join(str(v) for v in payload.values())))
    assert not words & names, f"a notification names a child: {words & names}"


def worker_named(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


async def subscribe_as(user: User, username: str, device: Device) -> None:
    await sign_in(user, username)
    await user.should_see("My caseload", retries=50)
    response = await user.http_client.post("/api/push/subscribe", json=device.subscription())
    assert response.status_code == 200, response.text


async def test_the_right_alerts_reach_the_right_people_once_signed_and_never_naming_a_child(
        user: User, app_store: Store, service: PushService) -> None:
    ben_phone, amara_phone = Device(service, "ben"), Device(service, "amara")
    await subscribe_as(user, "ben", ben_phone)
    await subscribe_as(user, "amara", amara_phone)
    key = (await user.http_client.get("/api/push/key")).json()["publicKey"]
    today = today_in_england()
    now = morning(today)

    report = await asyncio.to_thread(push.run_once, app_store, now)
    assert report.delivered == len(service.received) > 0

    ben, amara = worker_named(app_store, "ben"), worker_named(app_store, "amara")
    names = names_of_children(app_store)
    with app_store.session() as session:
        children = {c.id: c for c in session.exec(select(Child))}
        initials = {cid: app_store.opened(c).body.initials for cid, c in children.items()}
    ben_got = [ben_phone.decrypt(r) for r in service.to(ben_phone.path)]
    amara_got = [amara_phone.decrypt(r) for r in service.to(amara_phone.path)]
    for received in service.received:
        check_vapid(received, key, service.origin)
        assert received.headers["ttl"] == str(push.TTL_SECONDS)
        assert len(received.headers["topic"]) <= 32
    for payload in ben_got + amara_got:
        assert_names_no_child(payload, names)
        if payload["stage"] != "digest":
            assert TITLE.match(payload["title"]), payload["title"]
            assert payload["title"].endswith(initials[payload["child"]])
            assert payload["url"] == f"/child/{payload['child']}"

    # Ben hears about his own children only: due in 3 working days, due today, overdue.
    assert {(p["child"], p["clock"], p["stage"]) for p in ben_got} == expected_alerts(app_store, ben, today)
    assert len(ben_got) == len(expected_alerts(app_store, ben, today))
    # Amara, who manages the children in care team, hears what is overdue there, and gets her digest.
    overdue_in_team = {(child, clk) for who in ("ben", "chloe")
                       for child, clk, stage in expected_alerts(app_store, worker_named(app_store, who), today)
                       if stage == "overdue"}
    assert overdue_in_team, "the demo caseload has overdue children in care"
    assert {(p["child"], p["clock"]) for p in amara_got if p["stage"] == "overdue"} == overdue_in_team
    assert {p["stage"] for p in amara_got} == {"overdue", "digest"}
    digest = [p for p in amara_got if p["stage"] == "digest"]
    assert len(digest) == 1 and digest[0]["url"] == "/team" and "overdue" in digest[0]["body"]
    assert all(children[p["child"]].team_id == amara.team_id for p in amara_got if p["child"])

    # Once: a second run, and a restart (a new store and sender on the same database), send nothing.
    count = len(service.received)
    again = await asyncio.to_thread(push.run_once, app_store, now + timedelta(minutes=15))
    assert (again.decided, again.delivered) == (0, 0)
    restarted = Store(app_store.engine)
    restarted.unlock_with_server_key(SERVER_KEY)
    after_restart = await asyncio.to_thread(push.run_once, restarted, now + timedelta(hours=1))
    assert after_restart.delivered == 0 and len(service.received) == count
    with app_store.session() as session:
        assert len(list(session.exec(select(SentAlert)))) == len(ben_got) + len(amara_got)


# ---------------------------------------------------------------- worked out by hand, on a fixed day

# Wednesday 10 March 2027: no bank holiday near it (the next is Good Friday, 26 March 2027). Counting
# working days from it: Thu 11, Fri 12, Mon 15 (the 3rd, over the weekend), Tue 16 (the 4th), ... Wed 24 (10th).
HAND_DAY = date(2027, 3, 10)


def seen_visit(store: Store, session: Session, child: Child, worker: Worker, on: date, *, seen: bool = True) -> None:
    """A written-up visit on the day `on` (11:00 UTC, the same day in London)."""
    at = datetime.combine(on, time(11, 0), UTC)
    store.write(session, Visit(child_id=child.id, worker_id=worker.id, visited_at=at, seen=seen,
                               seen_alone=seen or None, status="signed_off", written_up_at=at, submitted_at=at),
                VisitBody(observations="Seen at home."), action="create")


def held_review(store: Store, session: Session, child: Child, kind: str, on: date) -> None:
    store.write(session, Review(child_id=child.id, kind=kind, scheduled_for=on, held_on=on), ReviewBody(),
                action="create")


def placement(store: Store, session: Session, child: Child, start: date, end: date | None = None) -> None:
    store.write(session, Placement(child_id=child.id, placement_type="U6", start=start, end=end), PlacementBody(),
                action="create")


def hand_worked_caseload(store: Store) -> dict[str, str]:
    """Two teams, each a worker and a manager, and children whose dates put each clock where the test wants it.

    Returns the ids by name: gita, hugo (workers), mira, omar (their managers), and the children.
    """
    ids: dict[str, str] = {}
    with store.session() as session:
        teams = {}
        for name, team_name, manager, worker in [
                ("riverside", "Riverside Team", ("mira", "Mira Stone"), ("gita", "Gita Ramsden")),
                ("hillside", "Hillside Team", ("omar", "Omar Bell"), ("hugo", "Hugo Lister"))]:
            team = Team(name=team_name)
            session.add(team)
            session.flush()
            boss = Worker(username=manager[0], display_name=manager[1], role=Role.manager.value, team_id=team.id)
            session.add(boss)
            session.flush()
            hand = Worker(username=worker[0], display_name=worker[1], team_id=team.id, manager_id=boss.id)
            session.add(hand)
            session.add(ManagedTeam(manager_id=boss.id, team_id=team.id))
            session.flush()
            teams[name] = team
            ids[manager[0]], ids[worker[0]] = boss.id, hand.id
        gita, hugo = session.get(Worker, ids["gita"]), session.get(Worker, ids["hugo"])
        assert gita is not None and hugo is not None

        def child(name: str, row: Child) -> Child:
            first, last = name.split()
            store.write(session, row, ChildBody(first_name=first, last_name=last), action="create")
            ids[first.lower()] = row.id
            return row

        def in_care_since_june(name: str) -> Child:
            # Looked after since 1 Jun 2026, reviewed 29 Jun 2026 and 1 Feb 2027: the next looked-after review
            # is 6 months after the last (reg 33(2)), 1 Aug 2027, far off. Every cic_review below is on track.
            row = child(name, Child(category="cic", team_id=teams["riverside"].id, worker_id=gita.id,
                                    looked_after_since=date(2026, 6, 1)))
            held_review(store, session, row, "cic_review", date(2026, 6, 29))
            held_review(store, session, row, "cic_review", date(2027, 2, 1))
            # Their initial health assessment on 15 Jun 2026, over five: the next is 12 months on, 15 Jun 2027.
            store.write(session, Review(child_id=row.id, kind="initial_health_assessment", held_on=date(2026, 6, 15),
                                        under_five=False), ReviewBody(), action="create")
            return row

        # Orla moved on Mon 8 Mar 2027 (2 days ago); seen on Fri 5 Mar in the placement before, which does not
        # count (reg 28 counts within the current placement). No visit since: due 1 week after the placement
        # began (reg 28(2)(a)), 8 Mar + 7 days = Mon 15 Mar: 5 days away, but over the weekend it is the 3rd
        # working day from today (Thu 11, Fri 12, Mon 15): due within 3.
        orla = in_care_since_june("Orla Brindle")
        placement(store, session, orla, date(2026, 6, 1), date(2027, 3, 8))
        placement(store, session, orla, date(2027, 3, 8))
        seen_visit(store, session, orla, gita, date(2027, 3, 5))

        # Tamsin, Idris, Elsie and Rufus: in a placement since 1 Jun 2026, so in its first year until 1 Jun 2027:
        # visits every 6 weeks (42 days) from the last one where the child was seen (reg 28(2)(b)).
        # Tamsin, last seen Wed 27 Jan 2027: + 42 days = Wed 10 Mar, due today.
        tamsin = in_care_since_june("Tamsin Ferrow")
        placement(store, session, tamsin, date(2026, 6, 1))
        seen_visit(store, session, tamsin, gita, date(2027, 1, 27))
        # Idris, last seen Wed 13 Jan 2027 (8 weeks ago): + 42 days = Wed 24 Feb, overdue. The visit on 3 Mar
        # found no one home: not seen, so it does not stop the clock.
        idris = in_care_since_june("Idris Kettleby")
        placement(store, session, idris, date(2026, 6, 1))
        seen_visit(store, session, idris, gita, date(2027, 1, 13))
        seen_visit(store, session, idris, gita, date(2027, 3, 3), seen=False)
        # Elsie, last seen Tue 2 Feb 2027: + 42 days = Tue 16 Mar, the 4th working day: no alert today.
        elsie = in_care_since_june("Elsie Marrow")
        placement(store, session, elsie, date(2026, 6, 1))
        seen_visit(store, session, elsie, gita, date(2027, 2, 2))
        # Rufus, last seen Wed 10 Feb 2027: + 42 days = Wed 24 Mar, 10 working days away: no alert.
        rufus = in_care_since_june("Rufus Penhale")
        placement(store, session, rufus, date(2026, 6, 1))
        seen_visit(store, session, rufus, gita, date(2027, 2, 10))

        # Noor, on a child protection plan since the initial conference on Wed 6 Jan 2027; last seen on a Saturday,
        # 27 Feb. cp_visit is 10 working days: Mar 1-5 (5), 8-12 (10): Fri 12 Mar (two calendar weeks would be
        # Sat 13 Mar), the 2nd working day from today: due within 3. The first review conference is 3 months
        # after the initial one: 6 Apr 2027, on track.
        noor = child("Noor Hazeldene", Child(category="cp", team_id=teams["riverside"].id, worker_id=gita.id,
                                             strategy_discussion=date(2026, 12, 14),
                                             initial_conference=date(2027, 1, 6)))
        seen_visit(store, session, noor, gita, date(2027, 2, 27))

        # Sol, Hugo's, on a child in need plan since 1 Oct 2026; last seen Mon 1 Feb 2027. cin_visit is 20 working
        # days (no bank holiday in February 2027): Feb 2-5 (4), 8-12 (9), 15-19 (14), 22-26 (19), Mon 1 Mar (20):
        # overdue. Reviewed 1 Feb 2027: the next child in need review is 3 months on, 1 May 2027, on track.
        sol = child("Sol Wyvern", Child(category="cin", team_id=teams["hillside"].id, worker_id=hugo.id,
                                        cin_plan_start=date(2026, 10, 1)))
        seen_visit(store, session, sol, hugo, date(2027, 2, 1))
        held_review(store, session, sol, "cin_review", date(2027, 2, 1))
    return ids


def received_alerts(service: PushService, device: Device) -> set[tuple[str | None, str, str, str, str]]:
    """(child, clock, stage, due, title) of each alert the device received."""
    got = [device.decrypt(r) for r in service.to(device.path)]
    alerts = {(p["child"], p["clock"], p["stage"], p["due"], p["title"]) for p in got}
    assert len(alerts) == len(got), "an alert reached the device twice"
    return alerts


def digest_bodies(service: PushService, device: Device) -> list[str]:
    return [p["body"] for p in map(device.decrypt, service.to(device.path)) if p["stage"] == "digest"]


def test_each_worker_and_manager_get_exactly_the_alerts_worked_out_by_hand_from_the_rules(
        store: Store, service: PushService) -> None:
    # The expectations here are written out from the dates above and storage/rules.toml, not from the
    # timescales engine: a mistake in the engine or in how the scheduler picks stages shows up as a difference.
    ids = hand_worked_caseload(store)
    devices = {name: Device(service, name) for name in ("gita", "hugo", "mira", "omar")}
    for name, device in devices.items():
        push_delivery.subscribe(store, ids[name], device.subscription())
    orla, tamsin, idris, noor, sol = (ids[n] for n in ("orla", "tamsin", "idris", "noor", "sol"))

    report = push.run_once(store, morning(HAND_DAY), quick_sender(store))
    assert report.failed == report.retry == 0

    # Gita, the allocated worker: due within 3 working days, due today and overdue; not Elsie (4th working
    # day), not Rufus (10th), no review (all far off), nothing of Hugo's.
    assert received_alerts(service, devices["gita"]) == {
        (orla, "cic_visit", "due_in_3", "2027-03-15", "Visit due Mon 15 Mar — O.B."),
        (noor, "cp_visit", "due_in_3", "2027-03-12", "Visit due Fri 12 Mar — N.H."),
        (tamsin, "cic_visit", "due_today", "2027-03-10", "Visit due today — T.F."),
        (idris, "cic_visit", "overdue", "2027-02-24", "Visit overdue — I.K."),
    }
    # Mira, Gita's manager: only what is overdue in her team, and her digest of the week to Wed 17 Mar
    # (Idris overdue; Tamsin due today; Noor 12, Orla 15, Elsie 16 Mar ahead; Rufus on 24 Mar is beyond it).
    assert received_alerts(service, devices["mira"]) == {
        (idris, "cic_visit", "overdue", "2027-02-24", "Visit overdue — I.K."),
        (None, "digest", "digest", "2027-03-10", "Your teams' week ahead"),
    }
    assert digest_bodies(service, devices["mira"]) == ["Riverside Team: 1 overdue, 1 due today, 3 more by Wed 17 Mar."]
    # Hugo and Omar, the other team: Sol's overdue visit, and Omar's digest; nothing of Gita's team.
    assert received_alerts(service, devices["hugo"]) == {
        (sol, "cin_visit", "overdue", "2027-03-01", "Visit overdue — S.W."),
    }
    assert received_alerts(service, devices["omar"]) == {
        (sol, "cin_visit", "overdue", "2027-03-01", "Visit overdue — S.W."),
        (None, "digest", "digest", "2027-03-10", "Your teams' week ahead"),
    }
    assert digest_bodies(service, devices["omar"]) == ["Hillside Team: 1 overdue, 0 due today, 0 more by Wed 17 Mar."]
    assert report.delivered == len(service.received) == 4 + 2 + 1 + 2
    made_up = {"Orla", "Brindle", "Tamsin", "Ferrow", "Idris", "Kettleby", "Elsie", "Marrow", "Rufus", "Penhale",
               "Noor", "Hazeldene", "Sol", "Wyvern"}
    for device in devices.values():
        for payload in map(device.decrypt, service.to(device.path)):
            assert_names_no_child(payload, made_up)

    # A quarter of an hour later: nothing new, nothing sent again.
    again = push.run_once(store, morning(HAND_DAY) + timedelta(minutes=15), quick_sender(store))
    assert (again.decided, again.delivered) == (0, 0) and len(service.received) == 9

    # The next morning, Thu 11 Mar: Tamsin's visit (due 10 Mar) is now overdue, and Elsie's (Tue 16 Mar) is the
    # 3rd working day (Fri 12, Mon 15, Tue 16). Orla and Noor are still due within 3 and Idris and Sol still
    # overdue on the same dates: not sent again. Each manager gets a new digest, to Thu 18 Mar.
    service.received.clear()
    push.run_once(store, morning(HAND_DAY + timedelta(days=1)), quick_sender(store))
    assert received_alerts(service, devices["gita"]) == {
        (tamsin, "cic_visit", "overdue", "2027-03-10", "Visit overdue — T.F."),
        (ids["elsie"], "cic_visit", "due_in_3", "2027-03-16", "Visit due Tue 16 Mar — E.M."),
    }
    assert received_alerts(service, devices["mira"]) == {
        (tamsin, "cic_visit", "overdue", "2027-03-10", "Visit overdue — T.F."),
        (None, "digest", "digest", "2027-03-11", "Your teams' week ahead"),
    }
    assert digest_bodies(service, devices["mira"]) == ["Riverside Team: 2 overdue, 0 due today, 3 more by Thu 18 Mar."]
    assert not service.to(devices["hugo"].path)
    assert received_alerts(service, devices["omar"]) == {(None, "digest", "digest", "2027-03-11",
                                                          "Your teams' week ahead")}


async def test_only_a_signed_in_worker_on_seen_itself_can_subscribe_and_bad_input_is_refused(
        user: User, app_store: Store, service: PushService) -> None:
    phone = Device(service, "x")
    response = await user.http_client.post("/api/push/subscribe", json=phone.subscription())
    assert response.status_code == 401 and "Sign in" in response.json()["error"]
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    bad = phone.subscription() | {"keys": {"p256dh": "bm90IGEga2V5", "auth": phone.subscription()["keys"]["auth"]}}
    response = await user.http_client.post("/api/push/subscribe", json=bad)
    assert response.status_code == 400 and "P-256" in response.json()["error"]
    response = await user.http_client.post("/api/push/subscribe", json=phone.subscription() | {
        "endpoint": "http://push.example.com/x"})
    assert response.status_code == 400 and "https://" in response.json()["error"]
    response = await user.http_client.post("/api/push/subscribe", json=phone.subscription(),
                                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert not push_delivery.subscriptions_of(app_store, worker_named(app_store, "erin").id)

    # A worker may have several devices; turning one off removes that one only.
    laptop = Device(service, "laptop")
    for device in (phone, laptop):
        assert (await user.http_client.post("/api/push/subscribe", json=device.subscription())).status_code == 200
    assert (await user.http_client.post("/api/push/subscribe", json=phone.subscription())).status_code == 200
    assert len(push_delivery.subscriptions_of(app_store, worker_named(app_store, "erin").id)) == 2
    response = await user.http_client.post("/api/push/unsubscribe", json={"endpoint": phone.endpoint})
    assert response.json() == {"ok": True, "removed": True}
    left = push_delivery.subscriptions_of(app_store, worker_named(app_store, "erin").id)
    assert [push_delivery.open_subscription(app_store, s)["endpoint"] for s in left] == [laptop.endpoint]


# ---------------------------------------------------------------- on both databases


def small_caseload(store: Store) -> Store:
    """A small team: ben and chloe (workers) managed by amara, three children long overdue a visit."""
    with store.session() as session:
        team = Team(name="Children in Need Team")
        session.add(team)
        session.flush()
        amara = Worker(username="amara", display_name="Amara Okafor", role=Role.manager.value, team_id=team.id)
        session.add(amara)
        session.flush()
        ben = Worker(username="ben", display_name="Ben Castle", team_id=team.id, manager_id=amara.id)
        chloe = Worker(username="chloe", display_name="Chloe Dunmore", team_id=team.id, manager_id=amara.id)
        session.add(ben)
        session.add(chloe)
        session.add(ManagedTeam(manager_id=amara.id, team_id=team.id))
        session.flush()
        for n, (first, last) in enumerate([("Juno", "Sorrelwood"), ("Kit", "Applewick"), ("Wren", "Oatcake")]):
            child = Child(category="cin", team_id=team.id, worker_id=(ben, chloe)[n % 2].id,
                          cin_plan_start=DEMO_DAY - timedelta(days=200))
            store.write(session, child, ChildBody(first_name=first, last_name=last), action="create")
    return store


@pytest.fixture
def small_store(store: Store) -> Store:
    return small_caseload(store)


def subscribe(store: Store, username: str, device: Device) -> PushSubscription:
    return push_delivery.subscribe(store, worker_named(store, username).id, device.subscription())


def quick_sender(store: Store) -> push.Sender:
    return push.Sender(push_delivery.vapid_private_key(store), backoff=0.05)


@pytest.mark.parametrize("status", [410, 404])
def test_a_gone_subscription_is_removed_with_its_queue(small_store: Store, service: PushService, status: int) -> None:
    # 410 Gone (unsubscribed) and 404 Not Found (expired, or never known) both end a subscription.
    gone, kept = Device(service, "gone"), Device(service, "kept")
    sub = subscribe(small_store, "ben", gone)
    subscribe(small_store, "ben", kept)
    service.script[gone.path] = [(status, {})]
    report = push.run_once(small_store, morning(DEMO_DAY), quick_sender(small_store))
    assert report.gone == 1 and report.delivered > 0
    assert len(service.to(gone.path)) == 1  # removed at the first answer: never tried again
    with small_store.session() as session:
        assert session.get(PushSubscription, sub.id) is None
        assert not list(session.exec(select(PushDelivery).where(PushDelivery.subscription_id == sub.id)))
    assert len(service.to(kept.path)) == report.delivered


def test_a_busy_push_service_is_retried_honouring_retry_after(small_store: Store, service: PushService) -> None:
    phone = Device(service, "phone")
    subscribe(small_store, "amara", phone)
    service.script[phone.path] = [(429, {"Retry-After": "1"}), (503, {})]
    started = clock.monotonic()
    report = push.run_once(small_store, morning(DEMO_DAY), quick_sender(small_store))
    got = service.to(phone.path)
    assert report.retry == 0 and report.failed == 0 and report.delivered == len(got) - 2
    # The first message was tried three times: the retry waited the second Retry-After asked for.
    first = [r for r in got if r.body == got[0].body]
    assert len(first) == 1 and got[1].at - got[0].at >= 1.0
    assert clock.monotonic() - started < 20
    decrypted = {phone.decrypt(r)["tag"] for r in got}
    assert len(decrypted) == report.delivered  # every alert arrived once


def test_a_push_service_down_for_longer_gets_the_message_at_a_later_run_once(
        small_store: Store, service: PushService) -> None:
    phone = Device(service, "phone")
    subscribe(small_store, "chloe", phone)
    service.script[phone.path] = [(503, {})] * 100
    sender = push.Sender(push_delivery.vapid_private_key(small_store), backoff=0.01, tries=2)
    first = push.run_once(small_store, morning(DEMO_DAY), sender)
    assert first.delivered == 0 and first.retry == first.decided > 0
    service.script[phone.path] = []
    service.received.clear()
    later = push.run_once(small_store, morning(DEMO_DAY) + timedelta(minutes=15), sender)
    assert later.decided == 0 and later.delivered == first.decided
    assert len({phone.decrypt(r)["tag"] for r in service.received}) == len(service.received)


def test_an_alert_decided_before_a_crash_is_delivered_after_the_restart(
        small_store: Store, service: PushService) -> None:
    phone = Device(service, "phone")
    subscribe(small_store, "ben", phone)
    decided = notify.record(small_store, morning(DEMO_DAY))  # ... and the process dies before sending
    assert decided and not service.received
    restarted = Store(small_store.engine)
    restarted.unlock_with_server_key(SERVER_KEY)
    report = push.run_once(restarted, morning(DEMO_DAY) + timedelta(minutes=1), quick_sender(restarted))
    assert report.decided == 0 and report.delivered == len(decided) == len(service.received)


def test_nothing_is_sent_at_night(small_store: Store, service: PushService) -> None:
    phone = Device(service, "phone")
    subscribe(small_store, "ben", phone)
    night = datetime.combine(DEMO_DAY, time(2, 30), LONDON)
    assert push.run_once(small_store, night, quick_sender(small_store)).decided == 0
    assert not service.received
    # Queued in the evening, still waiting at night: it goes in the morning, not at half past two.
    queued = notify.record(small_store, datetime.combine(DEMO_DAY, time(19, 50), LONDON))
    assert queued
    assert push.run_once(small_store, night + timedelta(days=1), quick_sender(small_store)).delivered == 0
    assert not service.received
    later = push.run_once(small_store, morning(DEMO_DAY + timedelta(days=1)), quick_sender(small_store))
    assert later.delivered == len(queued) == len(service.received)


def test_sent_alerts_are_forgotten_once_their_clock_moves_on_but_never_sent_twice(
        small_store: Store, service: PushService) -> None:
    subscribe(small_store, "ben", Device(service, "phone"))
    first = notify.record(small_store, morning(DEMO_DAY))
    assert first
    with small_store.session() as session:
        kit = session.exec(select(Child).where(Child.worker_id == worker_named(small_store, "ben").id)).first()
        assert kit is not None
        kit.closed_on = DEMO_DAY + timedelta(days=1)  # the case closes: its clocks stop
        session.add(kit)
    later = morning(DEMO_DAY + timedelta(days=40))
    again = notify.record(small_store, later)
    with small_store.session() as session:
        remembered = list(session.exec(select(SentAlert)))
    assert not [a for a in remembered if a.child_id == kit.id]
    # Ben's other child is still overdue on the same date: remembered, and not alerted a second time.
    still = {(a.child_id, a.clock, a.due, a.stage) for a in first if a.child_id != kit.id and a.stage == "overdue"}
    assert still and still <= {(a.child_id, a.clock, a.due, a.stage) for a in remembered}
    assert not {(a.child_id, a.clock, a.due, a.stage) for a in again} & still


def test_only_one_instance_runs_the_scheduler_on_postgresql(small_store: Store, service: PushService) -> None:
    if small_store.engine.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's")
    subscribe(small_store, "ben", Device(service, "phone"))
    other = create_engine(small_store.engine.url)
    with other.connect() as connection:
        assert connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": push_delivery.SCHEDULER_LOCK_ID}).scalar()
        report = push.run_once(small_store, morning(DEMO_DAY), quick_sender(small_store))
        assert not report.ran and not service.received
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": push_delivery.SCHEDULER_LOCK_ID})
    other.dispose()
    assert push.run_once(small_store, morning(DEMO_DAY), quick_sender(small_store)).delivered > 0


def test_the_vapid_key_is_made_once_and_kept_sealed(store: Store) -> None:
    first = push_delivery.public_key_b64url(push_delivery.vapid_private_key(store))
    again = Store(store.engine)
    again.unlock_with_server_key(SERVER_KEY)
    assert push_delivery.public_key_b64url(push_delivery.vapid_private_key(again)) == first
    assert len(first) == 87 and first[0] == "B"  # base64url of an uncompressed point: 0x04 + 64 bytes
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT value FROM keyring WHERE name = 'vapid'")).scalar()
    private = push_delivery.vapid_private_key(store).private_numbers().private_value
    assert format(private, "064x") not in str(stored) and str(private) not in str(stored)


def test_seen_notify_dry_run_says_what_would_be_sent_to_whom_and_why(
        tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import base64

    from pwa.cli import main

    url = f"sqlite:///{tmp_path / 'seen.db'}"
    monkeypatch.setenv("SEEN_DATABASE_URL", url)
    monkeypatch.setenv("SEEN_SERVER_KEY", base64.b64encode(SERVER_KEY).decode())
    store = Store.open(url)
    store.initialise_with_server_key(SERVER_KEY)
    small_caseload(store)
    assert main(["notify", "--dry-run", "--at", "2026-11-23T09:00"]) == 0
    out = capsys.readouterr().out
    assert re.search(r'to Ben Castle \(ben, worker, no device subscribed: not sent\): "Visit overdue — [A-Z]\.[A-Z]\." '
                     r"— because cin_visit for child \S+ on your caseload is overdue \(due .*\): 20 working days after", out)
    assert re.search(r"to Amara Okafor \(amara, manager, .*\): \"Your teams' week ahead\"", out)
    assert not set(re.findall(r"[A-Za-z]+", out)) & names_of_children(store)
    with store.session() as session:
        assert not list(session.exec(select(SentAlert)))  # a dry run records nothing
    assert main(["vapid"]) == 0
    assert capsys.readouterr().out.strip() == push_delivery.public_key_b64url(push_delivery.vapid_private_key(store))
    assert main(["notify", "--dry-run", "--at", "tomorrow"]) == 2


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = clock.monotonic() + seconds
    while not condition():
        assert clock.monotonic() < deadline, "timed out"
        clock.sleep(0.05)


@pytest.fixture
def sqlite_small_store(tmp_path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'seen.db'}")
    s.initialise_with_server_key(SERVER_KEY)
    yield small_caseload(s)
    s.engine.dispose()


def overdue_received(service: PushService, device: Device) -> int:
    """How many different overdue alerts reached the device (a 503'd try and its retry are one)."""
    return len({p["tag"] for p in map(device.decrypt, service.to(device.path)) if p["stage"] == "overdue"})


def test_the_scheduler_runs_on_a_thread_of_its_own_for_seen_server(
        sqlite_small_store: Store, service: PushService, monkeypatch: pytest.MonkeyPatch) -> None:
    small_store = sqlite_small_store
    monkeypatch.setenv("SEEN_NOTIFY_HOURS", "0-24")  # whenever the suite runs
    phone = Device(service, "phone")
    subscribe(small_store, "ben", phone)
    handle = push.start_scheduler(small_store, minutes=60, first_delay=0)
    try:
        assert handle.thread is not None
        wait_for(lambda: overdue_received(service, phone) == 4)  # two children, two clocks each, all overdue
    finally:
        handle.stop()
    assert not handle.thread.is_alive()


async def test_the_scheduler_runs_on_the_apps_event_loop_without_blocking_it(
        sqlite_small_store: Store, service: PushService, monkeypatch: pytest.MonkeyPatch) -> None:
    small_store = sqlite_small_store
    monkeypatch.setenv("SEEN_NOTIFY_HOURS", "0-24")
    phone = Device(service, "phone")
    subscribe(small_store, "amara", phone)
    service.script[phone.path] = [(503, {})]  # one retry on the way: the loop keeps turning meanwhile
    handle = push.start_scheduler(small_store, minutes=60, first_delay=0)
    ticks = 0
    try:
        assert handle.task is not None
        deadline = clock.monotonic() + 20
        while overdue_received(service, phone) < 6 and clock.monotonic() < deadline:  # 3 children, 2 clocks
            await asyncio.sleep(0.01)
            ticks += 1
    finally:
        handle.stop()
    assert overdue_received(service, phone) == 6
    assert ticks > 10  # the event loop ran while the alerts were decided, encrypted and sent


async def test_settings_offer_to_turn_notifications_on(user: User) -> None:
    await sign_in(user, "ben")
    await user.should_see("My caseload", retries=50)
    await user.open("/settings")
    await user.should_see("Turn on notifications", retries=50)
    await user.should_see("initials only, never a name")


async def test_signing_out_stops_alerts_to_that_browser_but_the_idle_lock_does_not(
        user: User, app_store: Store, service: PushService) -> None:
    erin = worker_named(app_store, "erin").id
    phone, laptop = Device(service, "phone"), Device(service, "laptop")
    await subscribe_as(user, "erin", phone)

    async def status(device: Device) -> bool:
        response = await user.http_client.post("/api/push/status", json={"endpoint": device.endpoint})
        assert response.status_code == 200, response.text
        return response.json()["subscribed"]

    assert await status(phone) and not await status(laptop)
    # The idle lock signs the worker out without turning their phone's alerts off.
    await user.open("/logout?locked=1")
    await user.should_see("Sign in", retries=50)
    assert len(push_delivery.subscriptions_of(app_store, erin)) == 1
    await subscribe_as(user, "erin", phone)
    # Signing out on purpose: this browser is no longer erin's, so it hears nothing more about her children.
    await user.open("/logout")
    await user.should_see("Sign in", retries=50)
    assert push_delivery.subscriptions_of(app_store, erin) == []
    response = await user.http_client.post("/api/push/status", json={"endpoint": phone.endpoint})
    assert response.status_code == 401
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    assert not await status(phone)


async def test_a_push_address_inside_the_network_is_refused_with_the_reason(
        user: User, app_store: Store, service: PushService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler sends to whatever address a browser subscribed: one on the server's own network (a
    database on loopback, a metadata service, a private host) would make Seen a way in. Only https on a
    public host is taken; the tests' own loopback push service needs SEEN_PUSH_ALLOW_LOOPBACK=1."""
    monkeypatch.delenv("SEEN_PUSH_ALLOW_LOOPBACK")
    phone = Device(service, "x")
    await sign_in(user, "erin")
    await user.should_see("My caseload", retries=50)
    for endpoint in ("http://127.0.0.1:5432/", "https://127.0.0.1:5432/", "https://localhost/x", "https://[::1]/x",
                     "https://10.0.0.8/x", "https://192.168.1.1/x", "https://169.254.169.254/latest/meta-data",
                     "https://[::ffff:127.0.0.1]/x", "https://db.internal/x", "https://printer.local/x",
                     "https://intranet/x", "https://0.0.0.0/x", "https://[fe80::1]/x", "http://push.example.com/x"):
        response = await user.http_client.post("/api/push/subscribe", json=phone.subscription() | {
            "endpoint": endpoint})
        assert response.status_code == 400, endpoint
        message = response.json()["error"]
        assert "must be an https:// address on the public internet" in message, (endpoint, message)
    assert not push_delivery.subscriptions_of(app_store, worker_named(app_store, "erin").id)
    assert push_delivery.check_subscription(phone.subscription() | {"endpoint": "https://fcm.googleapis.com/fcm/send/x"})

    # A subscription stored before addresses were checked is not sent to, and is removed.
    monkeypatch.setenv("SEEN_PUSH_ALLOW_LOOPBACK", "1")
    push_delivery.subscribe(app_store, worker_named(app_store, "erin").id, phone.subscription())
    monkeypatch.delenv("SEEN_PUSH_ALLOW_LOOPBACK")
    from pwa.push import Sender

    sender = Sender(push_delivery.vapid_private_key(app_store), tries=1)
    try:
        outcome = sender.send(phone.subscription(), "{}")
    finally:
        sender.close()
    assert outcome.status == "gone" and "public internet" in outcome.detail
    assert service.to(phone.path) == []  # nothing reached the address

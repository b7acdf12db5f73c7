"""What to send, to whom, and when: the push alerts for visits and reviews coming due.

For every open child the timescales engine gives each clock; from those this module decides the
alerts (`Alert`): to the allocated worker a clock due within 3 working days (`due_in_3`), due today
(`due_today`) and overdue (`overdue`); to the worker's manager (the worker's `manager_id` and the
managers of the child's team) anything overdue, and each morning a digest of the team's week ahead.

An alert is one (worker, child, clock, due date, stage): `SentAlert` remembers it, so the same alert is
never sent twice, even across restarts. Recording is done in the same transaction that queues the
message for each of the worker's devices (`PushDelivery`), so a decided alert is never lost either.

A notification may be read on a lock screen, so it never identifies a child: the child's initials and
the clock only ("Visit due today — J.S."), and the child's id for the link (an id says nothing).

This module also keeps the server's VAPID key (sealed in the keyring) and the push subscriptions
(sealed: an endpoint is a capability URL). Delivery itself is `pwa.push`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.cases import cases_for
from storage.models import (
    Child,
    ChildBody,
    KeyringEntry,
    ManagedTeam,
    PushDelivery,
    PushSubscription,
    Role,
    SentAlert,
    Team,
    Worker,
    utcnow,
)
from storage.store import Store
from storage.timescales import Clock, RuleSet, add_working_days, clocks_and_problems
from storage.timescales.calendar import LONDON

VAPID_KEY = "vapid"
SUBSCRIPTION_KIND = "push_subscription"
DELIVERY_KIND = "push_delivery"

# The stages of one clock, in the order a worker meets them.
WORKER_STAGES = ("due_in_3", "due_today", "overdue")
SOON_WORKING_DAYS = 3
DIGEST = "digest"
DIGEST_UNTIL_HOUR = 12  # a morning digest not sent by noon (server down all morning) is skipped that day
WEEK_AHEAD_DAYS = 7
SETTLED_AFTER_DAYS = 7  # a SentAlert whose clock has moved on is forgotten a week after its due date

CLOCK_WORDS = {
    "cic_visit": "Visit",
    "cp_visit": "Visit",
    "cin_visit": "Visit",
    "cic_review": "Review",
    "cp_review": "Review conference",
    "cin_review": "Review",
    "case_managed_review": "Review",
    "initial_conference": "Initial conference",
    "assessment": "Assessment",
}


def notify_hours() -> tuple[int, int]:
    """The hours (England time) alerts may go out: SEEN_NOTIFY_HOURS="7-20" means 07:00 to 19:59.

    Workers' phones should not buzz at night about work; a digest is sent at the first run from the
    opening hour.
    """
    raw = os.environ.get("SEEN_NOTIFY_HOURS", "7-20").strip()
    try:
        start, end = (int(part) for part in raw.split("-"))
    except ValueError:
        raise ValueError(f"SEEN_NOTIFY_HOURS={raw!r}: write the hours as two numbers, e.g. 7-20") from None
    if not (0 <= start < end <= 24):
        raise ValueError(f"SEEN_NOTIFY_HOURS={raw!r}: the first hour must come before the second, within 0-24")
    return start, end


def is_quiet(now: datetime) -> bool:
    """Whether `now` is outside the notify hours: nothing is decided or sent then."""
    start, end = notify_hours()
    return not (start <= now.astimezone(LONDON).hour < end)


def show_day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b}"


# ---------------------------------------------------------------- what to send


@dataclass(frozen=True)
class Alert:
    """One alert to one worker. `key` is what SentAlert remembers; `why` is the rule, in a sentence."""

    worker_id: str
    child_id: str  # for a digest: "digest"
    clock: str
    due: date
    stage: str  # due_in_3, due_today, overdue, digest
    audience: str  # "worker" (allocated) or "manager"
    title: str
    body: str
    url: str
    why: str

    @property
    def key(self) -> tuple[str, str, str, date, str]:
        return (self.worker_id, self.child_id, self.clock, self.due, self.stage)

    @property
    def topic(self) -> str:
        """A Web Push Topic (at most 32 URL-safe characters): a repeat replaces an undelivered copy."""
        text = "|".join(str(part) for part in self.key)
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode()[:32]

    def payload(self) -> dict[str, Any]:
        """What the service worker receives: no name, no address; initials and clock only."""
        return {
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "tag": self.topic,
            "child": self.child_id if self.child_id != DIGEST else None,
            "clock": self.clock,
            "due": self.due.isoformat(),
            "stage": self.stage,
        }


@dataclass
class Plan:
    """Everything that applies now, before de-duplication, with who can receive it."""

    today: date
    alerts: list[Alert] = field(default_factory=list)
    workers: dict[str, Worker] = field(default_factory=dict)
    quiet: bool = False  # outside notify hours: nothing is sent
    current: set[tuple[str, str, date]] = field(default_factory=set)  # every open clock: (child, clock, due)


def _stage(clock: Clock, today: date, soon: date) -> str | None:
    if clock.due < today:
        return "overdue"
    if clock.due == today:
        return "due_today"
    if clock.due <= soon:
        return "due_in_3"
    return None


def _worker_text(clock: Clock, stage: str, initials: str) -> tuple[str, str]:
    what = CLOCK_WORDS.get(clock.clock, "Visit")
    if stage == "due_today":
        return f"{what} due today — {initials}", f"Due today, {show_day(clock.due)}. Tap to open."
    if stage == "overdue":
        return f"{what} overdue — {initials}", f"It was due {show_day(clock.due)}. Tap to open."
    return f"{what} due {show_day(clock.due)} — {initials}", f"Due in {SOON_WORKING_DAYS} working days or fewer."


def _why(clock: Clock, stage: str, whose: str) -> str:
    when = {"due_today": "is due today", "overdue": "is overdue",
            "due_in_3": f"is due within {SOON_WORKING_DAYS} working days"}[stage]
    return f"{clock.clock} for child {clock.child} on {whose} {when} (due {clock.due:%d %b %Y}): {clock.rule} [{clock.source}]"


def plan(store: Store, now: datetime, rules: RuleSet | None = None) -> Plan:
    """Every alert that applies at `now`, sent or not. Opens only the children an alert is about."""
    local = now.astimezone(LONDON)
    today = local.date()
    result = Plan(today=today, quiet=is_quiet(now))
    soon = add_working_days(today, SOON_WORKING_DAYS)
    with store.session() as session:
        workers = {w.id: w for w in session.exec(select(Worker).where(col(Worker.active).is_(True)))}
        result.workers = workers
        team_managers: dict[str, set[str]] = defaultdict(set)
        for link in session.exec(select(ManagedTeam)):
            if link.manager_id in workers:
                team_managers[link.team_id].add(link.manager_id)
        for w in workers.values():
            if w.role == Role.manager.value and w.team_id:
                team_managers[w.team_id].add(w.id)
        teams = {t.id: t.name for t in session.exec(select(Team))}
        children = {c.id: c for c in session.exec(select(Child).where(col(Child.closed_on).is_(None)))}
        # A child whose clocks cannot be worked out stops no one's alerts; their managers are told in the digest.
        clocks, unworkable = clocks_and_problems(cases_for(session, children.values()), today, rules)
    initials: dict[str, str] = {}

    def initials_of(child: Child) -> str:
        if child.id not in initials:
            body: ChildBody = store.opened(child).body
            initials[child.id] = body.initials
        return initials[child.id]

    week_end = today + timedelta(days=WEEK_AHEAD_DAYS)
    week: dict[str, dict[str, int]] = defaultdict(lambda: {"overdue": 0, "due_today": 0, "ahead": 0})
    for clock in clocks:
        child = children[clock.child]
        result.current.add((clock.child, clock.clock, clock.due))
        if clock.due <= week_end:
            counts = week[child.team_id]
            counts["overdue" if clock.due < today else "due_today" if clock.due == today else "ahead"] += 1
        stage = _stage(clock, today, soon)
        if stage is None:
            continue
        url = f"/child/{child.id}"
        allocated = workers.get(child.worker_id or "")
        if allocated is not None:
            title, body = _worker_text(clock, stage, initials_of(child))
            result.alerts.append(Alert(allocated.id, child.id, clock.clock, clock.due, stage, "worker", title,
                                       body, url, _why(clock, stage, "your caseload")))
        if stage != "overdue":
            continue
        managers = set(team_managers.get(child.team_id, ()))
        if allocated is not None and allocated.manager_id in workers:
            managers.add(allocated.manager_id)
        whose = f"{allocated.display_name}'s caseload" if allocated else "no one's caseload (unallocated)"
        for manager_id in sorted(managers):
            if allocated is not None and manager_id == allocated.id:
                continue  # a manager with their own caseload already has the worker's alert
            what = CLOCK_WORDS.get(clock.clock, "Visit")
            result.alerts.append(Alert(
                manager_id, child.id, clock.clock, clock.due, "overdue", "manager",
                f"{what} overdue — {initials_of(child)}",
                f"On {whose}; it was due {show_day(clock.due)}.", url,
                _why(clock, "overdue", whose) + "; you manage this worker or team"))
    if local.hour < DIGEST_UNTIL_HOUR:
        managed: dict[str, set[str]] = defaultdict(set)
        for team_id, ids in team_managers.items():
            for manager_id in ids:
                managed[manager_id].add(team_id)
        for manager_id, team_ids in sorted(managed.items()):
            parts = []
            for team_id in sorted(team_ids, key=lambda t: teams.get(t, "")):
                c = week[team_id]
                unknown = sum(1 for child_id in unworkable if children[child_id].team_id == team_id)
                parts.append(f"{teams.get(team_id, 'Team')}: {c['overdue']} overdue, {c['due_today']} due today, "
                             f"{c['ahead']} more by {show_day(week_end)}"
                             + (f"; for {unknown} {'child' if unknown == 1 else 'children'} Seen cannot work out "
                                "what is due (see the team page)" if unknown else ""))
            result.alerts.append(Alert(
                manager_id, DIGEST, DIGEST, today, DIGEST, "manager", "Your teams' week ahead",
                ". ".join(parts) + ".", "/team",
                "the morning digest of the week ahead for the teams you manage"))
    return result


# ---------------------------------------------------------------- never twice


def unsent(session: Session, alerts: list[Alert]) -> list[Alert]:
    """The alerts SentAlert has not seen, first of each key only."""
    if not alerts:
        return []
    seen: set[tuple[str, str, str, date, str]] = set()
    worker_ids = sorted({a.worker_id for a in alerts})
    earliest = min(a.due for a in alerts)
    for start in range(0, len(worker_ids), 500):
        chunk = worker_ids[start : start + 500]
        query = select(  # type: ignore[call-overload]  # SQLModel types select() for up to 4 columns
            SentAlert.worker_id, SentAlert.child_id, SentAlert.clock, SentAlert.due, SentAlert.stage,
        ).where(col(SentAlert.worker_id).in_(chunk), col(SentAlert.due) >= earliest)
        seen.update(tuple(row) for row in session.exec(query))
    out = []
    for alert in alerts:
        if alert.key not in seen:
            seen.add(alert.key)
            out.append(alert)
    return out


def forget_settled(session: Session, decided: Plan) -> int:
    """Forgets alerts that can never be planned again, so SentAlert does not grow for ever.

    An alert is about one due date of one clock. Once that clock has moved on (the child was seen, the
    review held, the child's case closed), its due date is not current and the memory is no longer
    needed; a clock still overdue on the same date keeps it, however old. Digests are for their own day.
    Only rows a week past their due date are looked at, so nothing recent is ever in question.
    """
    cutoff = decided.today - timedelta(days=SETTLED_AFTER_DAYS)
    rows = session.exec(select(SentAlert).where(col(SentAlert.due) < cutoff)).all()
    settled = [r for r in rows if (r.child_id, r.clock, r.due) not in decided.current]
    for row in settled:
        session.delete(row)
    return len(settled)


def subscriptions_by_worker(session: Session) -> dict[str, list[PushSubscription]]:
    out: dict[str, list[PushSubscription]] = defaultdict(list)
    for sub in session.exec(select(PushSubscription)):
        out[sub.worker_id].append(sub)
    return out


def record(store: Store, now: datetime, rules: RuleSet | None = None) -> list[Alert]:
    """Decides what is new now and queues it for every device of its worker, in one transaction.

    Only workers with a device are recorded: a worker who subscribes later today still hears what is
    due today. Returns the alerts queued. A concurrent run that got there first makes this one roll
    back entirely (IntegrityError on SentAlert's key) and queue nothing.
    """
    decided = plan(store, now, rules)
    if decided.quiet:
        return []
    with store.session() as session:
        forget_settled(session, decided)
        devices = subscriptions_by_worker(session)
        fresh = [a for a in unsent(session, decided.alerts) if devices.get(a.worker_id)]
        for alert in fresh:
            session.add(SentAlert(worker_id=alert.worker_id, child_id=alert.child_id, clock=alert.clock,
                                  due=alert.due, stage=alert.stage, sent_at=now))
            for sub in devices[alert.worker_id]:
                delivery = PushDelivery(subscription_id=sub.id, worker_id=alert.worker_id, topic=alert.topic,
                                        created_at=now, next_attempt_at=now)
                delivery.sealed = store.seal_payload(DELIVERY_KIND, delivery.id, alert.payload())
                session.add(delivery)
    return fresh


def dry_run(store: Store, now: datetime, rules: RuleSet | None = None) -> list[str]:
    """What would be sent now, to whom and why, one line each; nothing is recorded or sent."""
    decided = plan(store, now, rules)
    with store.session() as session:
        devices = subscriptions_by_worker(session)
        fresh = unsent(session, decided.alerts)
    lines = []
    if decided.quiet:
        start, end = notify_hours()
        lines.append(f"It is outside the notify hours ({start:02d}:00-{end:02d}:00, SEEN_NOTIFY_HOURS): "
                     "nothing would be sent now. This is what would go at the next run inside them.")
    for alert in sorted(fresh, key=lambda a: (decided.workers[a.worker_id].display_name, a.stage, a.due)):
        worker = decided.workers[alert.worker_id]
        count = len(devices.get(alert.worker_id, []))
        reach = f"{count} device{'s' if count != 1 else ''}" if count else "no device subscribed: not sent"
        lines.append(f"to {worker.display_name} ({worker.username}, {alert.audience}, {reach}): "
                     f"\"{alert.title}\" — because {alert.why}")
    return lines


# ---------------------------------------------------------------- the delivery queue


@dataclass
class Job:
    """One queued message opened for sending: where to, what (already JSON), and its Topic."""

    delivery_id: str
    subscription_id: str
    info: dict[str, Any]
    data: str
    topic: str
    created_at: datetime
    attempts: int


def due_jobs(store: Store, now: datetime, limit: int = 5000) -> list[Job]:
    """Queued messages ready to go (never delivered, not given up, their time come)."""
    with store.session() as session:
        query = (select(PushDelivery, PushSubscription)
                 .join(PushSubscription, col(PushSubscription.id) == col(PushDelivery.subscription_id))
                 .where(col(PushDelivery.delivered_at).is_(None), col(PushDelivery.given_up_at).is_(None),
                        col(PushDelivery.next_attempt_at) <= now)
                 .order_by(col(PushDelivery.created_at)).limit(limit))
        rows = list(session.exec(query))
    return [Job(d.id, s.id, open_subscription(store, s),
                json.dumps(store.open_payload(DELIVERY_KIND, d.id, d.sealed), separators=(",", ":")),
                d.topic, d.created_at, d.attempts) for d, s in rows]


def mark_delivered(store: Store, delivery_id: str, at: datetime) -> None:
    with store.session() as session:
        row = session.get(PushDelivery, delivery_id)
        if row is not None:
            row.delivered_at = at
            row.attempts += 1
            session.add(row)


def mark_retry(store: Store, delivery_id: str, at: datetime, detail: str, give_up_after: timedelta) -> None:
    """Try again at `at`, unless the message would have expired at the push service by then anyway."""
    with store.session() as session:
        row = session.get(PushDelivery, delivery_id)
        if row is None:
            return
        row.attempts += 1
        row.detail = detail
        if at - row.created_at >= give_up_after:
            row.given_up_at = utcnow()
        else:
            row.next_attempt_at = at
        session.add(row)


def mark_failed(store: Store, delivery_id: str, detail: str) -> None:
    with store.session() as session:
        row = session.get(PushDelivery, delivery_id)
        if row is not None:
            row.attempts += 1
            row.given_up_at = utcnow()
            row.detail = detail
            session.add(row)


def forget_delivered(store: Store, before: datetime) -> int:
    """Delivered or abandoned messages older than `before` are removed; SentAlert keeps the memory."""
    with store.session() as session:
        result = session.exec(delete(PushDelivery).where(
            (col(PushDelivery.delivered_at) < before) | (col(PushDelivery.given_up_at) < before)))
        return int(result.rowcount or 0)


# ---------------------------------------------------------------- one scheduler at a time

SCHEDULER_LOCK_ID = 0x5EE9_0001  # the advisory lock's number: any constant all instances agree on


@contextmanager
def scheduler_lock(store: Store) -> Iterator[bool]:
    """On PostgreSQL, holds the scheduler's advisory lock for the block (yields False if another has it).

    A session-level lock on a connection of its own, released when the block ends, or by PostgreSQL
    itself if this process dies. On SQLite there is one server process; SentAlert's key still stops a
    second decision of the same alert.
    """
    if store.engine.dialect.name != "postgresql":
        yield True
        return
    with store.engine.connect() as connection:
        held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": SCHEDULER_LOCK_ID}).scalar())
        connection.commit()
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": SCHEDULER_LOCK_ID})
                connection.commit()


# ---------------------------------------------------------------- subscriptions


class BadSubscription(ValueError):
    """A subscription the browser sent that cannot be used; the message says what was wrong."""


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Names that never lead to a public push service (RFC 6761, 6762, 8375 and the usual private suffixes).
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".localdomain")


def allow_loopback() -> bool:
    """Tests only (SEEN_PUSH_ALLOW_LOOPBACK=1): the tests' own push service on http://127.0.0.1 is let through."""
    return os.environ.get("SEEN_PUSH_ALLOW_LOOPBACK") == "1"


def check_endpoint(endpoint: str) -> None:
    """Refuses (`BadSubscription`) a push service address that is not https on a public host: the scheduler
    sends to it, so an address inside the authority's network would let a browser make the server call
    there (a database, a metadata service). An IP address must be a global one; a name must have a dot and
    not end in a private suffix."""
    parts = urlsplit(endpoint)
    try:
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise BadSubscription("The push service address is not a valid address.") from None
    if not host:
        raise BadSubscription("The subscription has no push service address (endpoint).")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    loopback = (address is not None and address.is_loopback) or host == "localhost"
    if loopback and allow_loopback() and parts.scheme in ("http", "https"):
        return
    private = (not address.is_global) if address is not None else (
        host == "localhost" or "." not in host or host.endswith(PRIVATE_SUFFIXES))
    if parts.scheme != "https" or private:
        raise BadSubscription("The push service address must be an https:// address on the public internet: Seen "
                              "does not send over plain http, nor to local, private or link-local addresses. Turn "
                              "notifications off and on again in this browser.")


def check_subscription(raw: Any) -> dict[str, Any]:
    """A browser's PushSubscription.toJSON(), checked: an https endpoint on a public host, a P-256 key."""
    if not isinstance(raw, dict):
        raise BadSubscription("Send the subscription as the JSON the browser's pushManager gives.")
    endpoint = raw.get("endpoint")
    keys = raw.get("keys")
    if not isinstance(keys, dict):
        keys = {}
    if not isinstance(endpoint, str) or len(endpoint) > 2000:
        raise BadSubscription("The subscription has no push service address (endpoint).")
    check_endpoint(endpoint)
    try:
        p256dh = _b64url(str(keys.get("p256dh", "")))
        auth = _b64url(str(keys.get("auth", "")))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise BadSubscription("The subscription's key (p256dh) is not a P-256 public key.") from None
    if len(auth) != 16:
        raise BadSubscription("The subscription's auth secret must be 16 bytes.")
    return {"endpoint": endpoint, "keys": {"p256dh": str(keys["p256dh"]), "auth": str(keys["auth"])}}


def endpoint_hash(store: Store, endpoint: str) -> str:
    # Keyed: the table never holds anything from which the capability URL could be recovered.
    return store.ref_hash("push-endpoint:" + endpoint)


def subscribe(store: Store, worker_id: str, raw: Any) -> PushSubscription:
    """Stores this device's subscription for the worker (replacing any earlier one for the same endpoint)."""
    info = check_subscription(raw)
    key = endpoint_hash(store, info["endpoint"])
    for _ in range(2):
        try:
            with store.session() as session:
                sub = session.exec(select(PushSubscription).where(PushSubscription.endpoint_hash == key)).first()
                if sub is None:
                    sub = PushSubscription(worker_id=worker_id, endpoint_hash=key)
                elif sub.worker_id != worker_id:
                    # The device now belongs to someone else: it must not get the last worker's alerts.
                    session.exec(delete(PushDelivery).where(
                        col(PushDelivery.subscription_id) == sub.id))
                    sub.worker_id = worker_id
                sub.sealed = store.seal_payload(SUBSCRIPTION_KIND, sub.id, info)
                session.add(sub)
            return sub
        except IntegrityError:
            continue  # the same browser subscribed twice at once: the second pass finds the first
    raise BadSubscription("That subscription could not be saved; try again.")


def unsubscribe(store: Store, worker_id: str, endpoint: Any) -> bool:
    """Removes this worker's subscription for the endpoint; False if there was none."""
    if not isinstance(endpoint, str) or not endpoint:
        raise BadSubscription("Say which subscription to remove: send its endpoint.")
    with store.session() as session:
        sub = session.exec(select(PushSubscription).where(
            PushSubscription.endpoint_hash == endpoint_hash(store, endpoint),
            PushSubscription.worker_id == worker_id)).first()
        if sub is None:
            return False
        _remove(session, sub.id)
        return True


def forget_devices(store: Store, worker_id: str, endpoint_hashes: Iterable[str]) -> int:
    """The worker signed out of a browser: the subscriptions it made for them go, with their queues.
    Returns how many went. A subscription that has since passed to another worker stays theirs."""
    hashes = [h for h in endpoint_hashes if isinstance(h, str)]
    if not hashes:
        return 0
    with store.session() as session:
        ids = list(session.exec(select(PushSubscription.id).where(
            col(PushSubscription.endpoint_hash).in_(hashes), PushSubscription.worker_id == worker_id)))
        for sub_id in ids:
            _remove(session, sub_id)
    return len(ids)


def is_subscribed(store: Store, worker_id: str, endpoint: Any) -> bool:
    """Whether the server holds this endpoint as one of the worker's devices."""
    if not isinstance(endpoint, str) or not endpoint:
        raise BadSubscription("Say which subscription to look for: send its endpoint.")
    with store.session() as session:
        return session.exec(select(PushSubscription.id).where(
            PushSubscription.endpoint_hash == endpoint_hash(store, endpoint),
            PushSubscription.worker_id == worker_id)).first() is not None


def remove_subscription(store: Store, subscription_id: str) -> None:
    """The push service says the subscription is gone (404/410): it and its queue go."""
    with store.session() as session:
        _remove(session, subscription_id)


def _remove(session: Session, subscription_id: str) -> None:
    session.exec(delete(PushDelivery).where(col(PushDelivery.subscription_id) == subscription_id))
    session.exec(delete(PushSubscription).where(col(PushSubscription.id) == subscription_id))


def open_subscription(store: Store, sub: PushSubscription) -> dict[str, Any]:
    return store.open_payload(SUBSCRIPTION_KIND, sub.id, sub.sealed)


def subscriptions_of(store: Store, worker_id: str) -> list[PushSubscription]:
    with store.session() as session:
        return list(session.exec(select(PushSubscription).where(PushSubscription.worker_id == worker_id)))


# ---------------------------------------------------------------- the server's VAPID key


def vapid_private_key(store: Store) -> ec.EllipticCurvePrivateKey:
    """The server's VAPID key, made on first use and kept sealed in the keyring."""
    for _ in range(2):
        with store.session() as session:
            entry = session.get(KeyringEntry, VAPID_KEY)
        if entry is not None:
            raw = store.open_payload("keyring", VAPID_KEY, base64.b64decode(entry.value))
            return ec.derive_private_key(int(raw["d"], 16), ec.SECP256R1())
        key = ec.generate_private_key(ec.SECP256R1())
        sealed = store.seal_payload("keyring", VAPID_KEY, {"d": format(key.private_numbers().private_value, "064x")})
        try:
            with store.session() as session:
                session.add(KeyringEntry(name=VAPID_KEY, value=base64.b64encode(sealed).decode()))
            return key
        except IntegrityError:
            continue  # another instance made one first: use theirs
    raise RuntimeError("The VAPID key could not be made or read.")


def public_key_b64url(key: ec.EllipticCurvePrivateKey) -> str:
    """The applicationServerKey a browser subscribes with: the uncompressed point, base64url, no padding."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sent_alerts(session: Session, worker_ids: Iterable[str]) -> list[SentAlert]:
    return list(session.exec(select(SentAlert).where(col(SentAlert.worker_id).in_(list(worker_ids)))))


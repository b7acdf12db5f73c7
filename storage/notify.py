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

The subscriptions, the server's VAPID key and the delivery queue are `storage.push_delivery`;
delivery itself is `pwa.push`.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from storage.cases import cases_for
from storage.models import (
    Child,
    ChildBody,
    LateChange,
    ManagedTeam,
    PushDelivery,
    Role,
    SentAlert,
    Team,
    Worker,
)
from storage.push_delivery import DELIVERY_KIND, subscriptions_by_worker
from storage.store import Store
from storage.sync.behind import late_changes_by_team, waiting_alerts
from storage.timescales import Clock, RuleSet, add_working_days, clocks_and_problems
from storage.timescales.calendar import LONDON
from storage.timescales.facts import ALERT_WORDS

# The stages of one clock, in the order a worker meets them.
WORKER_STAGES = ("due_in_3", "due_today", "overdue")
SOON_WORKING_DAYS = 3
DIGEST = "digest"
DIGEST_UNTIL_HOUR = 12  # a morning digest not sent by noon (server down all morning) is skipped that day
WEEK_AHEAD_DAYS = 7
SETTLED_AFTER_DAYS = 7  # a SentAlert whose clock has moved on is forgotten a week after its due date

CLOCK_WORDS = ALERT_WORDS  # each clock's word in an alert's title, defined with the clocks


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
        result.alerts += [_changes_waiting(w, since) for w, since in waiting_alerts(session, workers, today)]
        result.alerts += [_late_change(manager_id, late) for team_id, late in late_changes_by_team(session)
                          for manager_id in sorted(team_managers.get(team_id, ()))]
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


def _changes_waiting(worker: Worker, since: date) -> Alert:
    """A worker's device has held changes the server lacks for longer than allowed (storage/sync/behind.py)."""
    return Alert(worker.id, "sync", "changes_waiting", since, "waiting", "worker", "Changes waiting to sync",
                 f"Your device has held changes since {show_day(since)}. Open Seen where there is a signal, or "
                 "fix what was set aside.", "/settings", "a device's changes waiting more than the allowed working days")


def _late_change(manager_id: str, late: LateChange) -> Alert:
    """A device sent edits for a child who had left its worker: a manager of the child's team is told."""
    held = late.outcome == "held"
    return Alert(manager_id, late.child_id, "late_change", late.arrived_at.astimezone(LONDON).date(), late.outcome,
                 "manager", "Edits wait for your decision" if held else "Edits arrived for a child who moved",
                 "A device sent edits for a child who had moved on from its worker"
                 + (": accept or discard them." if held else ": they were taken as that worker's."),
                 "/devices", "edits for a child in your team who had moved, sent after the move")


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


def sent_alerts(session: Session, worker_ids: Iterable[str]) -> list[SentAlert]:
    return list(session.exec(select(SentAlert).where(col(SentAlert.worker_id).in_(list(worker_ids)))))


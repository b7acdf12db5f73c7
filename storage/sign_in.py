"""Web sign-in: the password check, throttled per account and per client address, every failure audited.

A run of wrong passwords locks the account for a while: after `ACCOUNT_FREE` failures in a row the next try
must wait a minute, and each further failure doubles the wait, up to `MAX_LOCK` (15 minutes). Failures from
one client address are counted across accounts too (someone trying many usernames), with more free tries
(`ADDRESS_FREE`: an office's workers share an address) and the same waits. Counts older than `WINDOW` are
forgotten; a right password clears the account's count (not the address's). Only keyed hashes of the
username and address are kept in the throttle table; the audit trail names the username tried and where
from, so a manager or administrator can see who is being guessed at.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage import audit
from storage.models import SignInThrottle, Worker, utcnow
from storage.sealing import SealError, wait_words
from storage.store import Store, check_password, hash_password

ACCOUNT_FREE = 5
ADDRESS_FREE = 20
FIRST_LOCK = timedelta(minutes=1)
MAX_LOCK = timedelta(minutes=15)
WINDOW = timedelta(hours=1)
# Checked against when the username is unknown, so an unknown name takes as long as a wrong password.
_DECOY = hash_password("seen: no such worker")
NO_MATCH = "That username and password do not match. Check them and try again."


class SignInRefused(audit.Refusal):
    """A sign-in that did not succeed; the message says why and, when locked, how long to wait."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def lock_for(failures: int, free: int) -> timedelta:
    """How long a key is locked after its `failures`-th failure in a row (none before `free`)."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_LOCK * 2 ** (failures - free), MAX_LOCK)


def _keys(store: Store, username: str, address: str | None) -> dict[str, int]:
    keys = {"account:" + store.ref_hash("sign-in:" + username): ACCOUNT_FREE}
    if address:
        keys["address:" + store.ref_hash("sign-in-address:" + address)] = ADDRESS_FREE
    return keys


def sign_in(store: Store, username: str, password: str, address: str | None = None,
            now: datetime | None = None) -> Worker:
    """The worker whose username and password these are, or `SignInRefused` (audited) saying why.

    Blocks for the password hash (scrypt): call it off the event loop.
    """
    name = username.strip().lower()
    moment = now or utcnow()
    keys = _keys(store, name, address)
    tried = name[:64]
    where = f" from {address[:64]}" if address else ""
    with store.session() as session:
        for key in keys:
            row = session.get(SignInThrottle, key)
            if row is not None and row.locked_until is not None and _aware(row.locked_until) > moment:
                wait = math.ceil((_aware(row.locked_until) - moment).total_seconds())
                whose = "this account" if key.startswith("account:") else "this network address"
                # Audited by `session_scope` as the transaction rolls back.
                raise SignInRefused(f"Too many failed sign-ins for {whose}. Wait {wait_words(wait)} and try "
                                    "again; ask your administrator if you have forgotten your password.",
                                    kind="sign_in", record_id=tried, detail=f"locked, tried again{where}")
        worker = session.exec(select(Worker).where(Worker.username == name)).first()
    # The slow part, outside any transaction.
    try:
        stored = store.password_hash_of(worker) if worker is not None else _DECOY
    except SealError:  # a sealed hash moved onto this worker from another: it matches nothing
        stored = _DECOY
    matches = check_password(password, stored) and stored is not _DECOY
    if worker is not None and worker.active and matches:
        with store.session() as session:
            account = session.get(SignInThrottle, next(iter(keys)))
            if account is not None:
                session.delete(account)
            audit.append(session, "sign_in", "worker", worker.id, worker_id=worker.id, detail=where.strip())
        return worker
    why = "unknown username" if worker is None else "inactive worker" if not worker.active else "wrong password"
    for attempt in range(2):
        try:
            locked = _count_failure(store, keys, moment, tried, worker, f"{why}{where}")
            break
        except IntegrityError:  # another failure for the same key was counted at the same moment: count again
            if attempt:
                raise
    raise SignInRefused(NO_MATCH + (" Too many tries: wait a minute or more before the next." if locked else ""))


def _count_failure(store: Store, keys: dict[str, int], moment: datetime, tried: str, worker: Worker | None,
                   detail: str) -> bool:
    """Counts a failed sign-in against each key, locking those past their free tries, and audits it with the
    username tried, in one transaction; whether any key is now locked."""
    locked = False
    with store.session() as session:
        audit.append(session, "denied", "sign_in", tried, worker_id=worker.id if worker is not None else None,
                     detail=detail)
        for key, free in keys.items():
            row = session.get(SignInThrottle, key)
            if row is None:
                row = SignInThrottle(key=key, failures=0, last_failure_at=moment)
            elif moment - _aware(row.last_failure_at) > WINDOW:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = moment
            lock = lock_for(row.failures, free)
            row.locked_until = moment + lock if lock else None
            locked = locked or bool(lock)
            session.add(row)
    return locked

"""Getting push alerts to workers' devices: their subscriptions, the server's VAPID key, and the queue.

A subscription is sealed (an endpoint is a capability URL); the server's VAPID key is sealed in the keyring.
Each message `storage.notify` decides on waits in the queue (`PushDelivery`) until `pwa.push` delivers it,
retries it or gives up; only one scheduler runs at a time.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import KeyringEntry, PushDelivery, PushSubscription, utcnow
from storage.store import Store

VAPID_KEY = "vapid"
SUBSCRIPTION_KIND = "push_subscription"
DELIVERY_KIND = "push_delivery"


def subscriptions_by_worker(session: Session) -> dict[str, list[PushSubscription]]:
    out: dict[str, list[PushSubscription]] = defaultdict(list)
    for sub in session.exec(select(PushSubscription)):
        out[sub.worker_id].append(sub)
    return out


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

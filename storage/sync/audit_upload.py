"""The server's side of a device's audit upload: the node's own trail joins the server's chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from storage import audit, policy
from storage.allocations import once_allocated
from storage.models import AuditEvent, Child, Device, Worker, utcnow
from storage.store import Store
from storage.sync.bulk import copy_rows
from storage.sync.changes import in_utc
from storage.sync.pull import visible_child_ids
from storage.sync.refusal import Reason, SyncRefused


@dataclass
class AuditOutcome:
    recorded: list[str] = field(default_factory=list)  # by the events' ids on the node
    duplicates: list[str] = field(default_factory=list)


def record_device_audit(store: Store, device: Device, worker: Worker, batch_id: str,
                        events: list[dict[str, Any]]) -> AuditOutcome:
    """Appends audit events a device's node wrote to the server's own chain, in their order, each once.

    Each is recorded as the node wrote it (when, what) but with the sending device's id and its worker (an
    event naming no worker is the device's worker's: a device acts for no one else), with its origin (the
    device and the node's event id, unique: an upload sent again is held once) and when the server received
    it (an event received long after its time shows as backdated). The device speaks only for its own
    worker and the children they may see: if any event names another worker, or a child the worker may not
    see (other than a refusal on the node), none of the upload is recorded, and the refusal is audited.
    """
    with store.session() as session:
        teams = store.managed_team_ids(session, worker)
        visible = visible_child_ids(session, worker, teams)
        visible |= once_allocated(session, worker.id)  # what they did while the child was theirs still counts
        if teams and any(e.get("action") == "left_device" for e in events):  # a closed case of a managed team
            visible |= set(session.exec(select(Child.id).where(col(Child.team_id).in_(sorted(teams)),
                                                               col(Child.closed_on).is_not(None))))
    foreign = [e["id"] for e in events if e.get("worker_id") not in (None, worker.id)]
    latest = utcnow() + policy.DEVICE_TIME_SLACK
    future = [e["id"] for e in events if (at := in_utc(e["at"])) is None or at > latest]
    unseen = [e["id"] for e in events if e["id"] not in foreign and e.get("action") != "denied"
              and (child := e.get("child_id") or (e["record_id"] if e.get("kind") == "child" else None))
              and child not in visible]
    if foreign or unseen or future:
        refused = foreign + unseen + future
        with store.session() as session:
            audit.append(session, "denied", "audit", batch_id, worker_id=worker.id, device_id=device.id,
                         detail=",".join(refused[:20]))
        why = " and ".join(part for part in (
            f"{len(foreign)} name another worker" if foreign else "",
            f"{len(unseen)} concern a child this worker may not see" if unseen else "",
            f"{len(future)} are dated in the future (check the device's date and time)" if future else "") if part)
        raise SyncRefused(f"Of the audit events in this upload, {why}; a device sends only its own worker's, about "
                          "children they may see, as they happened. None of the upload was recorded.",
                          code=Reason.not_allowed, change_ids=refused)
    outcome = AuditOutcome()
    with store.session() as session:
        audit.hold_chain(session)  # from here no other upload appends: what is held stays as read
        origins = {f"{device.id}:{e['id']}": e for e in events}
        held = set(session.exec(select(AuditEvent.origin).where(col(AuditEvent.origin).in_(list(origins)))))
        new: list[dict[str, Any]] = []
        now = utcnow()
        for origin, event in origins.items():
            if origin in held:
                outcome.duplicates.append(event["id"])
                continue
            new.append({"at": in_utc(event["at"]), "worker_id": worker.id,
                        "device_id": device.id, "action": event["action"], "kind": event["kind"],
                        "record_id": event["record_id"], "child_id": event.get("child_id"),
                        "detail": event.get("detail") or "", "origin": origin, "received_at": now})
            outcome.recorded.append(event["id"])
        audit.append_many(session, new, write=copy_rows)
    return outcome

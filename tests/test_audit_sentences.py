"""The audit trail in words (storage/audit_trail.py): names for ids, field lists in words, devices by name,
no child's name for an administrator, and a refusal for anyone who manages no team."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from storage import audit
from storage.audit_trail import TrailFilter, field_words, initials, read_trail
from storage.models import Child, Device, Worker
from storage.store import NotAllowed, Store


def named(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def test_an_event_reads_as_a_sentence_with_names_field_words_and_the_devices_name(demo_store: Store) -> None:
    ben, amara, admin = named(demo_store, "ben"), named(demo_store, "amara"), named(demo_store, "admin")
    with demo_store.session() as session:
        child = session.exec(select(Child).where(Child.worker_id == ben.id)).first()
        name = demo_store.opened(child).body.name
        phone = Device(worker_id=ben.id, name="Ben's work phone", token_hash="sentences")
        session.add(phone)
        session.flush()
        audit.append_many(session, [{"action": "update", "kind": "placement", "record_id": "p-1", "worker_id": ben.id,
                                     "device_id": phone.id, "child_id": child.id, "detail": "body.carer_name,end_date",
                                     "at": datetime(2027, 3, 4, 10, 12, tzinfo=UTC)}])
    trail = read_trail(demo_store, amara, TrailFilter(child_id=child.id, worker_id=ben.id))
    line = next(line for line in trail.lines if "placement" in line.sentence)
    assert line.sentence == f"Ben Castle changed {initials(name)}'s placement, 4 Mar 2027 10:12"
    assert line.notes == ["Changed: carer name, end date", "On Ben's work phone"]
    assert trail.child_name == name and trail.children[child.id] == name

    as_admin = read_trail(demo_store, admin, TrailFilter(child_id=child.id, worker_id=ben.id))
    assert as_admin.child_name is None and as_admin.children == {}
    assert "Ben Castle changed the child's placement, 4 Mar 2027 10:12" in [x.sentence for x in as_admin.lines]
    assert name not in repr(as_admin)

    with pytest.raises(NotAllowed):
        read_trail(demo_store, admin)  # an administrator reads one child's trail at a time, not a team's
    with pytest.raises(NotAllowed):
        read_trail(demo_store, ben, TrailFilter(child_id=child.id))  # a worker reads no trail, even their own child's


def test_field_lists_and_initials_in_words() -> None:
    assert field_words("body.manager_note,signed_off_at,status") == (
        "management oversight note, when it was signed off, status")
    assert initials("Jamie  Lee Smith") == "J.L.S."

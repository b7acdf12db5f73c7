"""What a device keeps (issue 19): a closed case stays on its worker's device for the days set, then leaves
once nothing for it waits there; a device keeps the newest photos only, never one still to be sent. Through
the real sync API: a `seen server` process on PostgreSQL whose England's date is TODAY, frozen there
(tests/frozen_day.py), and the same pull in-process on the days the test names."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlmodel import select

from pwa.pages.caseload import closed_list
from pwa.sync.client import Phase, SyncClient
from storage.caseload import recently_closed
from storage.child_view import child_view
from storage.life_story import add_life_story_entry
from storage.models import AuditEvent, Child, Photo, Visit, Worker
from storage.photos import prepare_photo
from storage.store import Store
from storage.sync import node as sync_node
from storage.sync import pull as sync_pull
from tests.sync_support import SyncServer, add_visit, device, worker

pytestmark = pytest.mark.postgres

DEVICE_PHOTOS = 3
TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def server_url(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's `seen server`, keeping at most DEVICE_PHOTOS photos on a device, on England's date TODAY."""
    os.environ["SEEN_DEVICE_PHOTOS"] = str(DEVICE_PHOTOS)
    try:
        running = SyncServer(pg_url, tmp_path_factory.mktemp("server"), today=TODAY)
        running.start()
    finally:
        del os.environ["SEEN_DEVICE_PHOTOS"]
    yield running.url
    running.kill()


@pytest.fixture(autouse=True)
def settings_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same settings for the pulls this process makes as for the server's."""
    monkeypatch.setenv("SEEN_DEVICE_PHOTOS", str(DEVICE_PHOTOS))
    monkeypatch.setenv("SEEN_CLOSED_CASE_DAYS", "30")


def held_on(node: Store, model: type, record_id: str) -> bool:
    with node.session() as session:
        return session.get(model, record_id) is not None


def pull_on(server: Store, client: SyncClient, who: Worker, day: date) -> sync_pull.PullPage:
    """One pull for the device, as its sync makes it, with England's date `day`; applied on the device."""
    page = sync_pull.pull_page(server, who, cursor=sync_node.cursor(client.store),
                               held=sync_node.held_children(client.store), child_ids=None, today=day)
    sync_node.apply_pulled(client.store, page)
    return page


def later() -> None:
    time.sleep(0.01)  # change stamps and photos' times are milliseconds apart at least


def test_a_closed_case_stays_for_the_days_set_then_leaves_once_nothing_for_it_waits(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    alfie, ben_id = caseload.children["Alfie"], caseload.workers["ben"]
    amara = worker(server, caseload.workers["amara"])
    with server.session() as session:  # the manager closes Alfie's case, on the hosted app
        child = session.get(Child, alfie)
        closed = child.looked_after_since
        child.closed_on = closed
        server.outbox_enabled = True
        server.write(session, child, None, actor=amara, action="close", changed=["closed_on"])
    ben_on_server = worker(server, ben_id)

    # Thirty days on (England's date), the case is still on ben's device, closed there too.
    page = pull_on(server, ben, ben_on_server, closed + timedelta(days=30))
    assert alfie not in page.removals and held_on(ben.store, Child, alfie)
    with ben.store.session() as session:
        assert session.get(Child, alfie).closed_on == closed
    # Ben reaches it from the caseload's "Closed recently" list, on the device, for those thirty days only.
    ben_on_node = worker(ben.store, ben_id)
    (row,) = recently_closed(ben.store, ben_on_node, on=closed + timedelta(days=30))
    assert row.child_id == alfie and row.closed_on == closed
    assert f'href="/child/{alfie}"' in closed_list([row]) and f"(closed {closed:%d %b %Y})" in closed_list([row])
    assert recently_closed(ben.store, ben_on_node, on=closed + timedelta(days=31)) == []
    assert child_view(ben.store, ben_on_node, alfie).timeline  # the child's page opens there

    # Ben records a last visit; the day after the thirty, the case is due to leave, but the visit keeps it.
    later()
    visit_id = add_visit(ben.store, alfie, ben_id, "Written after the case closed.")
    page = pull_on(server, ben, ben_on_server, closed + timedelta(days=31))
    assert page.removals == [alfie]
    assert held_on(ben.store, Child, alfie) and held_on(ben.store, Visit, visit_id)

    # The next sync sends the visit (held for the manager: written after the closure), then the case leaves.
    report = ben.sync_once()
    assert report.phase == Phase.idle and report.held == 1 and report.refused == 0
    assert not held_on(ben.store, Child, alfie) and not held_on(ben.store, Visit, visit_id)
    with ben.store.session() as session:
        left = session.exec(select(AuditEvent).where(AuditEvent.action == "left_device",
                                                     AuditEvent.record_id == alfie)).all()
    assert [(e.child_id, e.worker_id) for e in left] == [(alfie, ben_id)]
    assert left[0].detail == f"left this device: the case closed on {closed:%d %b %Y}"
    assert ben.sync_once().audit_refused == 0  # the node's trail, and its leaving, reach the server's
    with server.session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "left_device",
                                                     AuditEvent.record_id == alfie)).first() is not None


def photo(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, 100, 200 - shade)).save(out, "PNG")
    return prepare_photo(out.getvalue())


def add_photo(store: Store, worker_id: str, child_id: str, shade: int) -> str:
    """A life-story entry with one photo; returns the photo's id."""
    later()
    fields = {"on": "2026-11-01", "section": "family", "title": f"Photo {shade}", "text": "A day out."}
    entry = add_life_story_entry(store, worker(store, worker_id), child_id, fields, [photo(shade)], today=TODAY)
    with store.session() as session:
        return session.exec(select(Photo.id).where(Photo.record_id == entry.id)).one()


def photos_on(store: Store, child_id: str) -> set[str]:
    with store.session() as session:
        return set(session.exec(select(Photo.id).where(Photo.child_id == child_id)))


def test_a_device_keeps_the_newest_photos_and_never_drops_one_not_yet_sent(seeded, server_url, tmp_path):
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    alfie, ben_id = caseload.children["Alfie"], caseload.workers["ben"]
    server.outbox_enabled = True  # as on the hosted app: its writes reach the devices
    old = [add_photo(server, ben_id, alfie, shade) for shade in (10, 20, 30, 40)]

    # The pull sends the newest three of the four.
    assert ben.sync_once().phase == Phase.idle
    assert photos_on(ben.store, alfie) == set(old[1:])

    # Ben adds a photo on the device; before it is sent, three newer ones arrive from the server.
    mine = add_photo(ben.store, ben_id, alfie, 50)
    newer = [add_photo(server, ben_id, alfie, shade) for shade in (60, 70, 80)]
    pull_on(server, ben, worker(server, ben_id), TODAY)
    assert photos_on(ben.store, alfie) == {mine, *newer}  # the older ones left; ben's, unsent, stayed

    # Once it is sent, it is one of the older ones the server holds: it leaves the device, not the server.
    report = ben.sync_once()
    assert report.phase == Phase.idle and report.pushed == 2 and report.refused == 0, report.message
    assert photos_on(ben.store, alfie) == set(newer)
    assert photos_on(server, alfie) == {*old, mine, *newer}

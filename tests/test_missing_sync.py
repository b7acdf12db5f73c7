"""A missing episode recorded on a device syncs to the server sealed, like every record; one out of order (the
interview before the child came back) is refused by the same policy as the screen, with the reason audited."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pwa.sync.client import Phase
from storage.models import MissingEpisode, MissingEpisodeBody
from tests.test_sync_policy import assert_refused, device, forged, push

pytestmark = pytest.mark.postgres


def test_a_missing_episode_syncs_sealed_and_an_out_of_order_one_is_refused(seeded, server_url: str,
                                                                          tmp_path: Path) -> None:
    server, caseload = seeded
    ben = device(server, caseload, server_url, tmp_path, "ben")
    with ben.store.session() as session:
        episode = MissingEpisode(child_id=caseload.children["Alfie"], start=date(2026, 11, 18),
                                 end=date(2026, 11, 19), interview_held_on=date(2026, 11, 20))
        ben.store.write(session, episode, MissingEpisodeBody(child_said="I went to the park"), action="create")
    report = ben.sync_once()
    assert report.phase == Phase.idle and report.refused == 0
    with server.session() as session:
        held = session.get(MissingEpisode, episode.id)
        assert held is not None and held.end == date(2026, 11, 19)
        assert b"park" not in held.sealed
        assert server.opened(held).body.child_said == "I went to the park"

    backwards = forged(ben.store, MissingEpisode, episode.id, clock=ben.store.hlc.stamp(),
                       fields={"interview_held_on": "2026-11-17"}, new_id=True)
    assert_refused(server, push(server_url, ben, [backwards]), backwards, "comes after the child came back",
                   "invalid")

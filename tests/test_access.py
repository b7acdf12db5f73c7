"""Who counts as a manager (one meaning for pages, menus and storage), and which calls count as Seen's own."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from pwa.security import same_origin
from storage import access
from storage.models import ManagedTeam, Role, Team, Worker
from storage.store import NotAllowed, Store


def test_a_manager_is_whoever_manages_a_team(store: Store) -> None:
    with store.session() as session:
        team = Team(name="Riverside")
        session.add(team)
        session.flush()
        lead = Worker(username="lead", display_name="Team lead", role=Role.manager.value, team_id=team.id)
        idle = Worker(username="idle", display_name="Manager, no team", role=Role.manager.value)
        admin = Worker(username="root", display_name="Administrator", role=Role.admin.value)
        session.add_all([lead, idle, admin])
        session.flush()
        session.add(ManagedTeam(manager_id=admin.id, team_id=team.id))
    with store.session() as session:
        assert access.is_manager(session, lead)  # a team manager's own team
        assert access.is_manager(session, admin)  # an administrator given a team to manage
        assert not access.is_manager(session, idle)  # the role alone, with no team, is no manager
        access.require_role(session, admin, Role.manager.value, what="/team")
    with pytest.raises(NotAllowed, match="team managers"), store.session() as session:
        access.require_role(session, idle, Role.manager.value, what="/team")


def _request(origin: str | None, *, scheme: str = "https", host: str = "seen.example.gov.uk") -> Request:
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin else [])
    return Request({"type": "http", "method": "POST", "scheme": scheme, "path": "/api/push/subscribe",
                    "headers": headers, "query_string": b"", "server": (host, 443)})


def test_only_seens_own_origin_counts_as_same_origin() -> None:
    assert same_origin(_request("https://seen.example.gov.uk"))
    assert same_origin(_request(None))  # no Origin header: not a browser's cross-site request
    assert not same_origin(_request("https://evil.example"))
    assert not same_origin(_request("http://seen.example.gov.uk"))  # another scheme is another origin
    assert not same_origin(_request("https://seen.example.gov.uk:8443"))  # and another port

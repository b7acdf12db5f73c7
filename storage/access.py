"""Who may see what: a worker's caseload, a manager's teams, the roles screens need, each refusal audited.

The one place access is decided, for pages, the offline API and sync alike (the store's methods of the same
names call these). A refusal reads as "not found" where the record's existence is itself private.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage import audit, policy
from storage.models import Child, ManagedTeam, Role, Worker


class NotAllowed(audit.Refusal):
    """The signed-in worker may not see or change this record (audited when it names the record)."""


# What a worker without the role is told; a refusal reads the same whatever was asked for.
ROLE_REFUSALS = {
    Role.manager.value: "This page is for team managers.",
    Role.admin.value: "This page is for administrators.",
}


def managed_team_ids(session: Session, worker: Worker) -> set[str]:
    """The teams the worker manages: those they are named manager of, and a team manager's own team."""
    teams = set(session.exec(select(ManagedTeam.team_id).where(ManagedTeam.manager_id == worker.id)))
    if worker.role == Role.manager and worker.team_id:
        teams.add(worker.team_id)
    return teams


def is_manager(session: Session, worker: Worker) -> bool:
    """Seen's one meaning of "manager": anyone who manages a team (a team manager's own team counts, and
    an administrator given a team to manage is its manager too)."""
    return bool(managed_team_ids(session, worker))


def may_see_child(session: Session, worker: Worker, child: Child) -> bool:
    """Practitioners see their own caseload; managers their teams'; admins no case records (the policy's
    rule, `policy.Actor.may_see`, with the teams read only when the child is not the worker's own)."""
    if child.worker_id == worker.id:
        return True
    return policy.actor(worker, managed_team_ids(session, worker)).may_see(child)


def visible_children(session: Session, worker: Worker) -> list[Child]:
    """The open cases the worker may see: their own, and their teams' if they manage any."""
    query = select(Child).where(col(Child.closed_on).is_(None))
    teams = managed_team_ids(session, worker)
    if teams:
        query = query.where((col(Child.team_id).in_(teams)) | (Child.worker_id == worker.id))
    else:
        query = query.where(Child.worker_id == worker.id)
    return list(session.exec(query))


def require_role(session: Session, worker: Worker, role: str, *, what: str, device_id: str | None = None) -> None:
    """Refuses, and audits, a worker without the role a screen or action needs ("manager", "admin").

    A manager is anyone who manages a team; an admin manages workers, teams and devices but reads
    no case records unless they manage a team too.
    """
    if role == Role.manager.value:
        allowed = is_manager(session, worker)
    else:
        allowed = worker.role == Role.admin.value
    if not (allowed and worker.active):
        raise audit.refuse(session, NotAllowed(ROLE_REFUSALS[role], kind="page", record_id=what,
                                               worker_id=worker.id, device_id=device_id))


def require_manager_of(session: Session, worker: Worker, child_id: str, *, kind: str = "child",
                       record_id: str | None = None, device_id: str | None = None) -> Child:
    """The child, if this worker manages its team; a refusal is audited and reads as 'not found'."""
    child = session.get(Child, child_id) if child_id else None
    if child is None or not worker.active or child.team_id not in managed_team_ids(session, worker):
        raise audit.refuse(session, NotAllowed(
            "That is not in a team you manage, or does not exist.", kind=kind, record_id=record_id or child_id,
            worker_id=worker.id, device_id=device_id, child_id=child.id if child else None))
    return child


def child_for(session: Session, worker: Worker, child_id: str, *, device_id: str | None = None) -> Child:
    """The child, if this worker may see it; a refusal is audited and reads as 'not found'."""
    child = session.get(Child, child_id)
    if child is None or not may_see_child(session, worker, child):
        # Recorded by session_scope however this transaction ends.
        raise audit.refuse(session, NotAllowed(
            "That child is not on your caseload, or does not exist.", kind="child", record_id=child_id,
            worker_id=worker.id, device_id=device_id, child_id=child_id if child else None))
    return child

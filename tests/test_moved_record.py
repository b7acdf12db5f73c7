"""A visit moved to another child in the database (its child_id changed, around Seen) is not shown under that
child: the child's page says a record could not be opened, shows the rest, and the trail records it."""

from __future__ import annotations

from nicegui.testing import User
from sqlalchemy import text
from sqlmodel import col, select

from storage.child_view import child_view
from storage.models import AuditEvent, Child, Visit, Worker
from storage.store import Store
from tests.conftest import sign_in


async def test_a_visit_moved_to_another_child_is_refused_on_that_childs_page(user: User, app_store: Store) -> None:
    with app_store.session() as session:
        ben = session.exec(select(Worker).where(Worker.username == "ben")).one()
        first, second = session.exec(select(Child).where(Child.worker_id == ben.id).order_by(Child.id).limit(2))
        visit = session.exec(select(Visit).where(Visit.child_id == first.id)
                             .order_by(col(Visit.visited_at).desc())).first()
        assert visit is not None
        second_name = app_store.opened(second).body.first_name
    with app_store.engine.begin() as connection:
        connection.execute(text("UPDATE visit SET child_id = :c WHERE id = :v"), {"c": second.id, "v": visit.id})

    await sign_in(user, "ben")
    await user.open(f"/child/{second.id}")
    await user.should_see(second_name, retries=50)
    await user.should_see("Seen could not open 1 record(s) held for this child", retries=50)
    await user.should_see(f"visit {visit.id[:8]}")
    view = child_view(app_store, ben, second.id)
    assert visit.id not in {item.record_id for item in view.timeline} and view.timeline  # the rest still shows
    with app_store.session() as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "unreadable",
                                                       AuditEvent.record_id == visit.id)).all()
    assert len(events) == 2  # the page, then the view read here
    assert {(e.child_id, e.kind) for e in events} == {(second.id, "visit")}

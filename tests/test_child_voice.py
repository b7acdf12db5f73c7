"""The child's own voice, in storage: a statement stored once and sealed, the worker's response beside it, and
"I don't feel safe" raising a flag that reaches the worker and manager through the push service and stays until
a manager records what was done."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from PIL import Image
from sqlmodel import select

from pwa import push
from storage import audit, push_delivery
from storage.audit_trail import TrailFilter, read_trail
from storage.child_forms import FormInvalid
from storage.child_voice import (
    StatementView,
    acknowledge_statement,
    blank_statement_form,
    clear_flag,
    open_flags,
    participation,
    put_in_book,
    raise_unsafe,
    statements_for_child,
    statements_on,
    submit_statement,
    timeline_items,
    voice_for_child,
)
from storage.life_story import life_story_book
from storage.models import (
    AuditEvent,
    Child,
    ChildStatement,
    Review,
    SafeguardingFlag,
    SafetyScore,
    Visit,
    VisitBody,
    Worker,
)
from storage.photos import prepare_photo
from storage.signs_of_safety import safety_scores
from storage.store import NotAllowed, Store
from tests.push_service import Device, PushService
from tests.test_push import small_caseload


def worker_named(store: Store, username: str) -> Worker:
    with store.session() as session:
        return session.exec(select(Worker).where(Worker.username == username)).one()


def child_of(store: Store, worker: Worker) -> Child:
    with store.session() as session:
        return session.exec(select(Child).where(Child.worker_id == worker.id).order_by(Child.id)).first()


@pytest.fixture
def small_store(store: Store) -> Store:
    return small_caseload(store)


@pytest.fixture
def service() -> Iterator[PushService]:
    s = PushService()
    yield s
    s.close()


def test_a_statement_is_stored_once_sealed_in_the_childs_words_with_their_language(small_store: Store) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)
    form = blank_statement_form("cy") | {"feeling_home": "4", "feeling_school": "2", "worries": "Maths tests",
                                         "tell_judge": "I want to see my nan"}
    first = submit_statement(small_store, ben, child.id, form)
    again = submit_statement(small_store, ben, child.id, form)  # a double tap, a retry: the same statement
    assert again.id == first.id
    with small_store.session() as session:
        rows = list(session.exec(select(ChildStatement)))
        assert len(rows) == 1 and b"Maths" not in rows[0].sealed  # sealed, not in clear
        assert session.get(Child, child.id).voice_language == "cy"
    [view] = statements_for_child(small_store, ben, child.id)
    assert view.feelings == {"home": 4, "school": 2}
    assert view.words == {"worries": "Maths tests", "tell_judge": "I want to see my nan"}
    assert view.language == "cy" and not view.response
    [item] = timeline_items([view])  # on the timeline, the child's words in their own style
    assert item.kind == "child_statement" and "For the judge: I want to see my nan" in item.child_words
    assert "At home: happy (4 of 5)" in item.child_words and item.lines == []
    assert [s.id for s in statements_on(small_store, ben, child.id, item.on)] == [first.id]  # beside that day's visit

    with pytest.raises(FormInvalid):
        acknowledge_statement(small_store, ben, first.id, "  ")
    acknowledge_statement(small_store, ben, first.id, "I will tell the judge at the hearing.")
    [view] = statements_for_child(small_store, ben, child.id)
    assert view.response == "I will tell the judge at the hearing." and view.acknowledged_by == "Ben"
    assert view.words["worries"] == "Maths tests"  # the child's words are kept as they said them


def test_a_statement_for_a_child_not_on_the_caseload_is_refused_and_audited(small_store: Store) -> None:
    ben, chloe = worker_named(small_store, "ben"), worker_named(small_store, "chloe")
    chloes_child = child_of(small_store, chloe)
    with pytest.raises(NotAllowed):
        submit_statement(small_store, ben, chloes_child.id, blank_statement_form() | {"hopes": "A dog"})
    with pytest.raises(FormInvalid) as invalid:
        submit_statement(small_store, ben, child_of(small_store, ben).id, blank_statement_form() | {"feeling_home": "9"})
    assert "five faces" in invalid.value.problems["feeling_home"]
    with small_store.session() as session:
        assert not list(session.exec(select(ChildStatement)))
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "denied",
                                                     AuditEvent.worker_id == ben.id)).first() is not None


def test_i_dont_feel_safe_reaches_the_worker_and_manager_and_stays_until_a_manager_acts(
        small_store: Store, service: PushService) -> None:
    ben, chloe, amara = (worker_named(small_store, name) for name in ("ben", "chloe", "amara"))
    child = child_of(small_store, ben)
    devices = {name: Device(service, name) for name in ("ben", "chloe", "amara")}
    for name, device in devices.items():
        push_delivery.subscribe(small_store, worker_named(small_store, name).id, device.subscription())

    raised = raise_unsafe(small_store, ben, child.id, "key-unsafe-1")
    assert raise_unsafe(small_store, ben, child.id, "key-unsafe-1").deliveries == []  # a second tap: once
    report = push.deliver_now(small_store, raised.deliveries,
                              push.Sender(push_delivery.vapid_private_key(small_store), backoff=0.05))
    assert report.delivered == 2
    assert not service.to(devices["chloe"].path)  # not her child, not her manager
    name = small_store.opened(child).body
    for who in ("ben", "amara"):
        [received] = service.to(devices[who].path)
        payload = devices[who].decrypt(received)
        assert payload["title"] == f"A child does not feel safe — {name.initials}"
        assert name.first_name not in str(payload) and name.last_name not in str(payload)
        assert payload["url"] == f"/child/{child.id}"

    assert [f.child_id for f in open_flags(small_store, ben)] == [child.id]
    assert [f.child_id for f in open_flags(small_store, amara)] == [child.id]
    assert open_flags(small_store, chloe) == []
    with pytest.raises(NotAllowed):
        clear_flag(small_store, ben, raised.flag.id, "Visited")  # a worker cannot clear it: a manager does
    with pytest.raises(FormInvalid):
        clear_flag(small_store, amara, raised.flag.id, " ")
    clear_flag(small_store, amara, raised.flag.id, "Strategy discussion held; child safe with nan tonight.")
    assert open_flags(small_store, ben) == [] and open_flags(small_store, amara) == []
    with small_store.session() as session:
        flag = session.get(SafeguardingFlag, raised.flag.id)
        assert flag.cleared_by == amara.id
        assert small_store.opened(flag).body.action_taken.startswith("Strategy discussion")
        actions = [e.action for e in session.exec(select(AuditEvent).where(
            AuditEvent.record_id == flag.id).order_by(AuditEvent.seq))]
        assert actions[:2] == ["raise", "push"] and "denied" in actions and actions[-1] == "clear"
        assert audit.verify(session).ok
    sentences = [line.sentence for line in read_trail(small_store, amara, TrailFilter(child_id=child.id)).lines]
    initials = small_store.opened(child).body.initials
    assert any(s.startswith(f"Ben Castle raised a safeguarding flag (\"I don't feel safe\") for {initials}")
               for s in sentences)
    assert any(s.startswith("Amara Okafor recorded what was done about a safeguarding flag") for s in sentences)


def test_safety_scores_over_time_count_a_corrected_visit_once_and_a_draft_not_at_all(small_store: Store) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)

    def visit(day: int, scale: dict[str, int], status: str = "submitted", supersedes: str | None = None) -> str:
        at = datetime(2026, 11, day, 11, 0, tzinfo=UTC)
        row = Visit(child_id=child.id, worker_id=ben.id, visited_at=at, status=status, submitted_at=at,
                    supersedes=supersedes)
        with small_store.session() as session:
            small_store.write(session, row, VisitBody(safety_scale=[SafetyScore(who=w, score=s)
                                                                    for w, s in scale.items()]), action="create")
        return row.id

    visit(2, {"Social worker": 4, "Mum": 6})
    wrong = visit(9, {"Social worker": 1})
    visit(9, {"Social worker": 5, "Mum": 7}, supersedes=wrong)
    visit(16, {"Social worker": 9}, status="draft")
    visit(23, {"Mum": 8})
    scores = safety_scores(small_store, ben, child.id)
    assert scores.days == [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 23)]
    assert scores.scores == {"Mum": [6, 7, 8], "Social worker": [4, 5, None]}
    assert scores.latest() == {"Mum": 8, "Social worker": 5}


def test_the_next_reviews_participation_is_taken_from_what_the_child_told_their_iro() -> None:
    def said(day: date, **words: str) -> StatementView:
        return StatementView(id="s", made_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC), language="en",
                             unsafe=False, feelings={}, words=words, drawings={}, response="", acknowledged_by="",
                             acknowledged_at=None)

    last_review = date(2026, 9, 1)
    assert participation(3, [said(date(2026, 11, 2), tell_iro="Hi")], last_review).code == "PN0"
    told = participation(9, [said(date(2026, 11, 2), tell_iro="I want to stay")], last_review)
    assert told.code == "PN6" and "2 November 2026" in told.why
    assert participation(9, [said(date(2026, 8, 2), tell_iro="Before the review")], last_review).code == ""
    assert participation(9, [said(date(2026, 11, 2), tell_judge="Not the IRO")], last_review).code == ""


def test_how_the_child_took_part_in_their_visits_points_to_the_next_reviews_code() -> None:
    last_review = date(2026, 9, 1)
    spoke = participation(9, [], last_review, [(date(2026, 11, 9), "spoke"), (date(2026, 10, 1), "advocate")])
    assert spoke.code == "PN1" and "9 November 2026" in spoke.why and "spoke for themselves" in spoke.why
    assert "PN5" in spoke.why and "PN7" in spoke.why  # what applies if they do not attend
    assert participation(9, [], last_review, [(date(2026, 11, 9), "without_words")]).code == "PN3"
    assert participation(3, [], last_review, [(date(2026, 11, 9), "spoke")]).code == "PN0"  # under four
    both = participation(9, [StatementView(id="s", made_at=datetime(2026, 11, 2, 12, tzinfo=UTC), language="en",
                                           unsafe=False, feelings={}, words={"tell_iro": "Hi"}, drawings={},
                                           response="", acknowledged_by="", acknowledged_at=None)],
                         last_review, [(date(2026, 11, 9), "advocate")])
    assert both.code == "PN6" and "PN2" in both.why  # not attending: their words reach it; attending: an advocate
    assert participation(9, [], last_review, []).code == ""


def test_the_child_page_takes_how_the_child_took_part_from_visits_since_the_last_review(small_store: Store) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)
    with small_store.session() as session:
        row = session.get(Child, child.id)
        row.category = "cic"
        session.add(row)
        session.add(Review(child_id=child.id, kind="cic_review", held_on=date(2026, 9, 1)))
        session.commit()

    def visit(month: int, day: int, took_part: str, supersedes: str | None = None) -> str:
        at = datetime(2026, month, day, 11, 0, tzinfo=UTC)
        row = Visit(child_id=child.id, worker_id=ben.id, visited_at=at, status="submitted", submitted_at=at,
                    supersedes=supersedes)
        with small_store.session() as session:
            small_store.write(session, row, VisitBody(answers={"took_part": took_part} if took_part else {}),
                              action="create")
        return row.id

    visit(8, 20, "spoke")  # before the last review: not counted
    assert voice_for_child(small_store, ben, child.id).participation.code == ""
    visit(10, 5, "advocate")
    wrong = visit(11, 9, "spoke")
    visit(11, 9, "without_words", supersedes=wrong)  # the correction counts, not what it corrects
    visit(11, 20, "")  # a visit that does not say
    taking_part = voice_for_child(small_store, ben, child.id).participation
    assert taking_part.code == "PN3" and "9 November 2026" in taking_part.why


def test_a_statement_the_child_agrees_to_goes_in_their_life_story_book_without_the_safety_words(
        small_store: Store) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)
    drawing = io.BytesIO()
    Image.new("RGB", (120, 80), (20, 120, 200)).save(drawing, "PNG")
    agreed = submit_statement(small_store, ben, child.id, blank_statement_form() | {
        "hopes": "A dog called Biscuit", "unsafe": "yes"}, drawings={"hopes": prepare_photo(drawing.getvalue())})
    submit_statement(small_store, ben, child.id, blank_statement_form() | {"tell_judge": "Not for the book"})
    assert [s.title for s in life_story_book(small_store, ben, child.id).sections].count("In my own words") == 0

    put_in_book(small_store, ben, agreed.id)
    put_in_book(small_store, ben, agreed.id)  # a second tap changes nothing
    book = life_story_book(small_store, ben, child.id)
    (chapter,) = [s for s in book.sections if s.code == "own_words"]
    (entry,) = chapter.entries
    assert "A dog called Biscuit" in entry.text and "Not for the book" not in entry.text
    assert "safe" not in entry.text  # what they said about feeling unsafe stays in the record, not the book
    (drawing_id,) = entry.photo_ids
    assert drawing_id in book.photos  # their drawing is printed with their words
    assert statements_for_child(small_store, ben, child.id)[-1].in_book
    with small_store.session() as session:
        marked = session.exec(select(AuditEvent).where(AuditEvent.record_id == agreed.id,
                                                       AuditEvent.action == "in_book")).all()
        assert len(marked) == 1


def test_a_statement_moved_to_another_child_outside_seen_is_left_out_and_audited(small_store: Store) -> None:
    ben = worker_named(small_store, "ben")
    child = child_of(small_store, ben)
    with small_store.session() as session:
        other = session.exec(select(Child).where(Child.id != child.id)).first()
    statement = submit_statement(small_store, ben, child.id, blank_statement_form() | {"hopes": "A dog"})
    with small_store.session() as session:  # changed in the database, not through Seen
        row = session.get(ChildStatement, statement.id)
        row.child_id = other.id
        session.add(row)
    amara = worker_named(small_store, "amara")
    assert statements_for_child(small_store, amara, other.id) == []
    with small_store.session() as session:
        assert session.exec(select(AuditEvent).where(AuditEvent.action == "unreadable",
                                                     AuditEvent.record_id == statement.id)).first() is not None

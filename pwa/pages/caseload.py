"""My caseload: the worker's children, worst clock first, one tap to the child or to log a visit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Set as AbstractSet
from datetime import date
from html import escape
from urllib.parse import quote

from nicegui import ui

from pwa import state
from pwa.auth import current_worker
from pwa.child_voice_section import safeguarding_flags
from pwa.layout import STATUS_STYLE, clock_line, frame, refused_drafts
from pwa.threads import io_bound
from storage.caseload import CaseloadRow, ClosedRow, caseload, recently_closed
from storage.drafts import DRAFT_KIND, drafts_by_child
from storage.models import CATEGORY_LABELS, Worker
from storage.store import Store
from storage.timescales.calendar import today_in_england


def place_line(row: CaseloadRow) -> str:
    parts = [CATEGORY_LABELS.get(row.category, row.category)]
    if row.age is not None:
        parts.append(f"age {row.age}")
    if row.placement_town:
        parts.append(row.placement_town)
    return " · ".join(parts)


def _load(store: Store, worker: Worker) -> tuple[list[CaseloadRow], dict[str, set[str]], list[ClosedRow]]:
    return caseload(store, worker), drafts_by_child(store, worker), recently_closed(store, worker)


def closed_list(rows: list[ClosedRow]) -> str:
    """The worker's recently closed cases as HTML links, to finish their recording (names escaped)."""
    return ('<ul class="seen-closed" aria-label="Closed recently">'
            + "".join(f'<li><a href="{_attr(f"/child/{quote(row.child_id, safe=str())}")}">{_text(row.name)}</a>'
                      f" (closed {row.closed_on:%d %b %Y})</li>" for row in rows) + "</ul>")


# Each card is plain HTML, all in one element for the whole list: a Quasar card with a row, link, badge,
# labels and a button was ~10 NiceGUI elements a card, and building, sending and mounting them was most
# of the page's time. The cards' styles are written once below rather than as Tailwind classes on each
# card, which makes the page's HTML (escaped, compressed and parsed on every load) 40% smaller. Cards
# off the screen are not laid out or painted until scrolled to (content-visibility), yet all are in the page.
# Every piece of text is escaped here: names come from the council's import.
CARD_CSS = """
<style>
.seen-cards { list-style: none; margin: 0; padding: 0; width: 100%; display: flex; flex-direction: column; gap: .5rem; }
.seen-card { width: 100%; padding: .75rem; display: flex; flex-direction: column; gap: .25rem;
  content-visibility: auto; contain-intrinsic-size: auto 11rem; }
.seen-card .top { display: flex; flex-wrap: nowrap; align-items: center; gap: .5rem; }
.seen-card .name { flex-grow: 1; min-width: 0; padding: .5rem 0; font-size: 1.125rem; line-height: 1.75rem;
  font-weight: 700; color: var(--q-primary); text-decoration: underline; text-underline-offset: 2px; }
.seen-card .badge { border-radius: .25rem; padding: .125rem .5rem; font-size: .875rem; line-height: 1.25rem;
  font-weight: 700; white-space: nowrap; }
.seen-card .place { font-size: .875rem; line-height: 1.25rem; color: #1f2937; }
.seen-card .away { align-self: flex-start; border-radius: .25rem; padding: .125rem .5rem; font-size: .875rem;
  line-height: 1.25rem; font-weight: 700; background: #581c87; color: #fff; }
.seen-card .unfinished { font-size: .875rem; line-height: 1.25rem; font-weight: 700; color: #7c2d12; }
.seen-card, .seen-card .name, .seen-card div { overflow-wrap: break-word; }
.seen-card .visit { display: flex; align-items: center; justify-content: center; gap: .5rem; width: 100%;
  min-height: 3rem; margin-top: .25rem; padding: .25rem .75rem; border-radius: .25rem;
  background: var(--q-primary); color: #fff; font-weight: 500; text-decoration: none;
  box-shadow: 0 1px 3px 0 rgb(0 0 0 / .1), 0 1px 2px -1px rgb(0 0 0 / .1); }
.seen-card .visit .q-icon { font-size: 1.5rem; }
</style>
"""


def _text(value: str) -> str:
    return escape(value, quote=False)


def _attr(value: str) -> str:
    return escape(value, quote=True)


UNFINISHED_WORDS = {"wishes_and_feelings": "wishes and feelings", "life_story": "life story"}


def child_card(row: CaseloadRow, drafts: AbstractSet[str] = frozenset(), today: date | None = None) -> str:
    """One child's card as HTML: name (to the child), status in a colour and a word, next clock, place, a visit link."""
    word, colours = STATUS_STYLE[row.status]
    child = _attr(f"/child/{quote(row.child_id, safe='')}")
    parts = [
        f'<li class="q-card seen-card" data-child="{_attr(row.child_id)}" data-status="{row.status}">'
        f'<div class="top"><a class="name" href="{child}">{_text(row.name)}</a>'
        f'<span class="badge {colours}">{word}</span></div>'
    ]
    if row.problem:
        parts.append(f'<div class="problem">{_text(row.problem_line)}</div>')
    if row.missing:
        parts.append('<div class="problem missing">Missing now</div>')
    if row.next_clock:
        parts.append(f"<div>{_text(clock_line(row.next_clock, today))}</div>")
    parts.append(f'<div class="place">{_text(place_line(row))}</div>')
    if row.out_of_area:
        distance = f", {row.distance_km:.0f} km away" if row.distance_km is not None else ""
        where = f"Out of area: {row.placement_la or 'another authority'}{distance}"
        parts.append(f'<div class="away">{_text(where)}</div>')
    others = [words for kind, words in UNFINISHED_WORDS.items() if kind in drafts]
    if others:
        parts.append(f'<div class="unfinished">{_text("Unfinished: " + " and ".join(others))}</div>')
    label = "Continue visit draft" if DRAFT_KIND in drafts else "Log a visit"
    parts.append(f'<a class="visit" href="{child}/visit" aria-label="{_attr(f"{label} for {row.name}")}">'
                 f'<i class="q-icon notranslate material-icons" aria-hidden="true">edit_note</i>{label}</a></li>')
    return "".join(parts)


def cards(rows: list[CaseloadRow], drafts: dict[str, set[str]], today: date | None = None) -> str:
    """The caseload list's HTML, in the order given (worst clock first); `drafts` the unfinished forms by child."""
    return ('<ul class="seen-cards" aria-label="Children">'
            + "".join(child_card(row, drafts.get(row.child_id, frozenset()), today) for row in rows) + "</ul>")


async def caseload_page() -> None:
    worker = current_worker()
    rows, drafts, closed = await io_bound(_load, state.store(), worker)
    counts = Counter(row.status for row in rows)
    today = today_in_england()
    with frame("My caseload"):
        ui.add_head_html(CARD_CSS)
        refused_drafts()
        await safeguarding_flags()
        if rows:
            summary = ", ".join(f"{counts[s]} {STATUS_STYLE[s][0].lower()}" for s in STATUS_STYLE if counts[s])
            ui.label(f"{len(rows)} children: {summary}.").classes("text-base").mark("summary")
        search = ui.input("Search by name").props(
            'outlined clearable type=search for="caseload-search" autocomplete=off').classes("w-full").mark("search")
        shown_count = ui.label().classes("sr-only").props('aria-live="polite"')
        empty = ui.label().classes("w-full")
        # Every piece of text in it is escaped by child_card, so the browser need not sanitise it again.
        listing = ui.html(sanitize=False).classes("w-full").mark("caseload")

        def show() -> None:
            words = (search.value or "").strip().lower().split()
            shown = [r for r in rows if all(w in r.name.lower() for w in words)]
            shown_count.text = f"{len(shown)} shown"
            empty.text = "" if shown else "No children match that name." if words else "No children are allocated to you."
            empty.set_visibility(not shown)
            listing.content = cards(shown, drafts, today)

        search.on_value_change(show)
        show()
        if closed:  # kept a while after closing (SEEN_CLOSED_CASE_DAYS), on a device too, to finish recording
            ui.label("Closed recently").classes("text-lg font-bold mt-4").props('role="heading" aria-level="2"')
            ui.html(closed_list(closed), sanitize=False).classes("w-full").mark("closed")


def register() -> None:
    ui.page("/", title="My caseload · Seen")(caseload_page)

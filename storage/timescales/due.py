"""`seen due`: cases read from JSON, checked, and what is due printed as a table or JSON."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from storage.timescales.calendar import show_date, today_in_england
from storage.timescales.clocks import UNWORKABLE, check_needs, clocks_and_problems, worst_first
from storage.timescales.facts import (
    ARRANGEMENTS,
    CATEGORIES,
    HEALTH_ASSESSMENT_KINDS,
    REVIEW_KINDS,
    Case,
    CaseError,
    Clock,
    HealthAssessmentFacts,
    MissingEpisodeFacts,
    PlacementFacts,
    ReviewFacts,
    VisitFacts,
)
from storage.timescales.rules import RuleError, load_rules, plan_period

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CASE_DATES = (
    "looked_after_since",
    "strategy_discussion",
    "initial_conference",
    "cin_plan_start",
    "case_managed_since",
    "referral",
    "assessment_completed",
    "care_leaver_since",
    "date_of_birth",
)


def _date(case_id: str, field: str, value: object, required: bool = False) -> date | None:
    if value is None:
        if required:
            raise CaseError(case_id, field, "a date is needed here (YYYY-MM-DD)")
        return None
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise CaseError(case_id, field, f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-02")


def _flag(case_id: str, field: str, value: object, default: bool | None) -> bool | None:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CaseError(case_id, field, f"{value!r} should be true or false")
    return value


def _items(case_id: str, field: str, value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise CaseError(case_id, field, "should be a list of objects")
    return value


def case_from_json(obj: dict[str, Any]) -> Case:
    """A Case from its JSON form (as `seen due --cases` reads), checked: raises CaseError naming the field."""
    if not isinstance(obj, dict):
        raise CaseError("?", "", "a case must be a JSON object")
    raw_id = obj.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
        raise CaseError("?", "id", "every case needs an id")
    cid = str(raw_id)
    category = obj.get("category")
    if category not in CATEGORIES:
        raise CaseError(cid, "category", f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
    dates = {name: _date(cid, name, obj.get(name)) for name in _CASE_DATES}
    placements = []
    for i, p in enumerate(_items(cid, "placements", obj.get("placements"))):
        at = f"placements[{i}]"
        start = _date(cid, f"{at}.start", p.get("start"), required=True)
        end = _date(cid, f"{at}.end", p.get("end"))
        assert start is not None
        if end is not None and end < start:
            raise CaseError(cid, f"{at}.end", f"the placement ends ({end}) before it starts ({start})")
        arrangement = p.get("arrangement") or "standard"
        if arrangement not in ARRANGEMENTS:
            raise CaseError(
                cid,
                f"{at}.arrangement",
                f"unknown arrangement {arrangement!r}: use one of {', '.join(ARRANGEMENTS)}",
            )
        placements.append(
            PlacementFacts(
                start=start,
                end=end,
                long_term=bool(_flag(cid, f"{at}.long_term", p.get("long_term"), False)),
                arrangement=arrangement,
                child_agreed_less_frequent=bool(
                    _flag(cid, f"{at}.child_agreed_less_frequent", p.get("child_agreed_less_frequent"), False)
                ),
            )
        )
    visits = []
    for i, v in enumerate(_items(cid, "visits", obj.get("visits"))):
        at = f"visits[{i}]"
        when = _date(cid, f"{at}.date", v.get("date"), required=True)
        assert when is not None
        seen = _flag(cid, f"{at}.seen", v.get("seen"), None)
        if seen is None:
            raise CaseError(cid, f"{at}.seen", "say whether the child was seen (true or false)")
        visits.append(VisitFacts(when, seen, _flag(cid, f"{at}.seen_alone", v.get("seen_alone"), None)))
    reviews = []
    for i, r in enumerate(_items(cid, "reviews", obj.get("reviews"))):
        at = f"reviews[{i}]"
        kind = r.get("kind")
        if kind not in REVIEW_KINDS:
            raise CaseError(
                cid, f"{at}.kind", f"unknown review kind {kind!r}: use one of {', '.join(REVIEW_KINDS)}"
            )
        when = _date(cid, f"{at}.date", r.get("date"), required=True)
        assert when is not None
        reviews.append(ReviewFacts(kind, when))
    case = Case(
        id=cid,
        category=category,
        placements=tuple(placements),
        visits=tuple(visits),
        reviews=tuple(reviews),
        plan_visit_every=_plan_visit_every(cid, obj.get("plan_visit_every")),
        missing_episodes=_missing_episodes(cid, obj.get("missing_episodes")),
        accommodation_moves=_moves(cid, obj.get("accommodation_moves")),
        health_assessments=_health_assessments(cid, obj.get("health_assessments")),
        **dates,
    )
    check_needs(case)
    return case


def _plan_visit_every(cid: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CaseError(cid, "plan_visit_every", f"{value!r} should be a period written as text, e.g. '2 weeks'")
    try:
        return plan_period(value).text
    except RuleError as e:
        raise CaseError(cid, "plan_visit_every", str(e)) from None


def _missing_episodes(cid: str, value: object) -> tuple[MissingEpisodeFacts, ...]:
    episodes = []
    for i, e in enumerate(_items(cid, "missing_episodes", value)):
        at = f"missing_episodes[{i}]"
        start = _date(cid, f"{at}.start", e.get("start"), required=True)
        end = _date(cid, f"{at}.end", e.get("end"))
        interview = _date(cid, f"{at}.return_interview", e.get("return_interview"))
        assert start is not None
        if end is not None and end < start:
            raise CaseError(cid, f"{at}.end", f"the episode ends ({end}) before it starts ({start})")
        if interview is not None and end is None:
            raise CaseError(cid, f"{at}.return_interview", "an interview needs the episode's end: when they came back")
        episodes.append(MissingEpisodeFacts(start, end, interview))
    return tuple(episodes)


def _moves(cid: str, value: object) -> tuple[date, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CaseError(cid, "accommodation_moves", "should be a list of dates (YYYY-MM-DD)")
    moves = [_date(cid, f"accommodation_moves[{i}]", d, required=True) for i, d in enumerate(value)]
    return tuple(d for d in moves if d is not None)


def _health_assessments(cid: str, value: object) -> tuple[HealthAssessmentFacts, ...] | None:
    if value is None:
        return None  # not known: no health clocks (an empty list means known, and none yet)
    assessments = []
    for i, a in enumerate(_items(cid, "health_assessments", value)):
        at = f"health_assessments[{i}]"
        kind = a.get("kind")
        if kind not in HEALTH_ASSESSMENT_KINDS:
            raise CaseError(cid, f"{at}.kind", f"unknown health assessment kind {kind!r}: use one of "
                            f"{', '.join(HEALTH_ASSESSMENT_KINDS)}")
        when = _date(cid, f"{at}.date", a.get("date"), required=True)
        assert when is not None
        assessments.append(HealthAssessmentFacts(kind, when))
    return tuple(assessments)


_STATUS_WORDS = {
    "overdue": "OVERDUE",
    "due_today": "due today",
    "due_soon": "due soon",
    "on_track": "on track",
}


def format_table(clocks: Iterable[Clock]) -> str:
    """A readable table of clocks, worst first: child, what, due date, status, and why."""
    rows = [
        (
            c.child,
            c.clock.replace("_", " "),
            f"{c.due:%a} {show_date(c.due)}",
            _STATUS_WORDS.get(c.status, c.status),
            c.rule,
        )
        for c in worst_first(clocks)
    ]
    if not rows:
        return "Nothing is due: no clocks apply to these children.\n"
    header = ("child", "clock", "due", "status", "why")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
    return "\n".join(lines) + "\n"


def _on_date(text: str) -> date:
    try:
        if not _ISO_DATE.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write it as YYYY-MM-DD") from None


def _read_cases(path: str) -> list[Case]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise _Usage(f"cannot read {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise _Usage(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise _Usage(f"{path} should hold a JSON list of cases")
    cases = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise _Usage(f"case number {i + 1} in {path} is not a JSON object")
        cases.append(case_from_json(obj))
    return cases


class _Usage(Exception):
    pass


def due_command(argv: list[str], load_store_cases: Callable[[], list[Case]] | None = None) -> int:
    """`seen due [--cases FILE.json] [--on YYYY-MM-DD] [--json] [--rules FILE]`: print what is due.

    Returns the exit status: 0; 1 when some children's clocks could not be worked out (each named on stderr
    with the reason; every other child's are printed); or 2 when the input or the rules are wrong (the
    reason on stderr, nothing on stdout).
    """
    parser = argparse.ArgumentParser(
        prog="seen due", description="Which visits and reviews are due, when, and which rule says so."
    )
    parser.add_argument("--cases", metavar="FILE.json", help="a JSON list of cases (default: the store)")
    parser.add_argument(
        "--on",
        type=_on_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="the day to work out for (default: today)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--rules", metavar="FILE.toml", help="an authority's rule file (default: $SEEN_RULES)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    on = args.on or today_in_england()
    try:
        rules = load_rules(args.rules)
        if args.cases:
            cases = _read_cases(args.cases)
        elif load_store_cases is not None:
            cases = load_store_cases()
        else:
            raise _Usage("no cases to read: pass --cases FILE.json (a JSON list of cases)")
        clocks, problems = clocks_and_problems(cases, on, rules)
    except (CaseError, RuleError, _Usage) as e:
        print(f"seen due: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps([c.to_json() for c in clocks], indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_table(clocks))
    for child_id, reason in problems.items():
        print(f"seen due: {UNWORKABLE.lower()} for child {child_id}: {reason}", file=sys.stderr)
    return 1 if problems else 0

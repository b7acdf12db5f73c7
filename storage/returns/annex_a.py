"""Ofsted's Annex A lists that visits feed, one CSV each: List 6 (children in need, the date last seen), List 7
(child protection: the last statutory visit, seen alone, the latest review conference) and List 8 (children in
care: the last visit and review, missing episodes). Dates are DD/MM/YYYY as Annex A asks; yes/no strict.
"""

from __future__ import annotations

from datetime import date

from storage.models import Child, Visit
from storage.returns.common import Caseload, Table, age_on, dmy, review_day, yes_no
from storage.returns.ssda903 import child_code
from storage.timescales.calendar import LONDON, today_in_england

PERSON = ("Child Unique ID", "Gender", "Ethnicity", "Date of Birth", "Age of Child (Years)", "Allocated Team",
          "Allocated Worker")
LIST_6 = (*PERSON, "Case status", "Date child was last seen")
LIST_7 = (*PERSON, "Child Protection Plan Start Date", "Date of last statutory visit", "Was the child seen alone?",
          "Date of latest review conference")
LIST_8 = (*PERSON, "Date started to be looked after", "Legal status", "Placement type",
          "Date of last statutory visit", "Date of latest review", "Number of missing episodes",
          "Number of missing episodes offered a return interview")


def tables(caseload: Caseload, today: date | None = None) -> list[Table]:
    today = today or today_in_england()
    lists: dict[str, list[list[object]]] = {"list6": [], "list7": [], "list8": []}
    for child in caseload.children:
        if child.closed_on is not None:
            continue
        seen = [visit for visit in caseload.visits[child.id] if visit.seen]
        last_seen: Visit | None = seen[-1] if seen else None
        person = _person(caseload, child, today)
        held = sorted(d for r in caseload.reviews[child.id] if r.kind == "cic_review" and (d := review_day(r)))
        if child.category in ("cin", "case_managed"):
            lists["list6"].append([*person, "Case managed" if child.category == "case_managed" else "Child in need",
                                   dmy(last_seen.visited_at.astimezone(LONDON).date() if last_seen else None)])
        elif child.category == "cp":
            plan = caseload.cp_plan_on(child.id, today)
            conferences = [d for r in caseload.reviews[child.id] if r.kind in ("cp_review", "initial_conference")
                           and (d := review_day(r))]
            lists["list7"].append([*person, dmy(plan.start if plan else child.initial_conference),
                                   dmy(last_seen.visited_at.astimezone(LONDON).date() if last_seen else None),
                                   yes_no(bool(last_seen and last_seen.seen_alone)),
                                   dmy(max(conferences) if conferences else None)])
        elif child.category == "cic":
            placements = caseload.placements[child.id]
            missing = caseload.missing[child.id]
            lists["list8"].append([
                *person, dmy(child.looked_after_since), child.legal_status,
                placements[-1].placement_type if placements else "",
                dmy(last_seen.visited_at.astimezone(LONDON).date() if last_seen else None), dmy(held[-1] if held else None), len(missing),
                sum(1 for m in missing if m.interview_offered_on or m.interview_held_on)])
    return [Table("list6", LIST_6, lists["list6"]), Table("list7", LIST_7, lists["list7"]),
            Table("list8", LIST_8, lists["list8"])]


def _person(caseload: Caseload, child: Child, today: date) -> list[object]:
    body = caseload.bodies.get(child.id)
    dob = body.date_of_birth if body else None
    age = age_on(dob, today)
    return [child_code(child, body), body.gender if body else "", body.ethnicity if body else "", dmy(dob),
            "" if age is None else age, child.team_id, child.worker_id or ""]

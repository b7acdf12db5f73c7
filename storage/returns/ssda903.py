"""The SSDA903 return (children looked after) for one collection year, in the files and columns the DfE's
validator `csc-validator-be-903` reads (its `lac_validator.config.column_names`): header, episodes, reviews,
missing and social worker episodes, one CSV each.

The collection year YYYY runs from 1 April YYYY-1 to 31 March YYYY (the DfE's "2026" is 2025-26). An episode
is a placement within a period of care: a new one starts when the child starts to be looked after ("S") or
moves ("P"); one that ends while the child stays looked after ends "X1".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from storage.models import Child, ChildBody, Placement
from storage.returns.common import Caseload, PeriodRow, Table, age_on, dmy, review_day

HEADER = ("CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB")
EPISODES = ("CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC", "REASON_PLACE_CHANGE",
            "HOME_POST", "PL_POST", "URN")
REVIEWS = ("CHILD", "DOB", "REVIEW", "REVIEW_CODE")
MISSING = ("CHILD", "DOB", "MISSING", "MIS_START", "MIS_END")
SW_EPISODES = ("CHILD", "DOB", "SW_ID", "SW_DECOM", "SW_DEC", "SW_REASON")

SEX = {"male": "M", "female": "F"}  # anything else: "U"
# The DfE's ethnicity codes, from the words a case management system (or the demo) records.
ETHNIC = {
    "white british": "WBRI", "white irish": "WIRI", "gypsy/roma": "WROM", "traveller of irish heritage": "WIRT",
    "any other white background": "WOTH", "mixed white and black caribbean": "MWBC",
    "mixed white and black african": "MWBA", "mixed white and asian": "MWAS", "any other mixed background": "MOTH",
    "asian british - indian": "AIND", "asian british - pakistani": "APKN", "asian british - bangladeshi": "ABAN",
    "any other asian background": "AOTH", "black british - caribbean": "BCRB", "black british - african": "BAFR",
    "any other black background": "BOTH", "chinese": "CHNE", "any other ethnic group": "OOTH",
    "refused": "REFU", "not obtained": "NOBT",
}
UPN_UNKNOWN_UNDER_5 = "UN1"  # the child is under school age and has no UPN
UPN_NOT_RECORDED = "UN5"  # the UPN was not recorded
# Codes the DfE has since replaced: semi-independent accommodation (H5) is supported accommodation (K3).
CURRENT_PLACE = {"H5": "K3"}
# Seen records no child of a looked-after young woman: MOTHER is "0" (not a mother) for a girl, blank otherwise.
# Seen does not hold social workers' Social Work England numbers: "XX" is the return's prefix for an id that is
# not one. Nor why a worker changed: "OTHERS".
SW_PREFIX = "XX"
SW_REASON = "OTHERS"


def year_bounds(year: int) -> tuple[date, date]:
    """The collection year ending 31 March `year`."""
    return date(year - 1, 4, 1), date(year, 3, 31)


def child_code(child: Child, body: ChildBody | None) -> str:
    """The child's id in a return: the council's own id if Seen holds it, else Seen's (cut to 10 characters,
    the return's width)."""
    return (body.external_ref if body and body.external_ref else child.id.replace("-", ""))[:10]


def ethnic_code(words: str) -> str:
    return ETHNIC.get(words.strip().lower(), "NOBT" if words.strip() else "NOBT")


@dataclass(frozen=True)
class Episode:
    """One SSDA903 episode: a placement within a period of care."""

    period: PeriodRow
    placement: Placement | None
    start: date
    end: date | None
    reason_new: str
    reason_ended: str


def episodes_of(caseload: Caseload, child_id: str) -> list[Episode]:
    """The child's episodes in order: each placement within its period of care (a period with no placement is one
    episode on its own)."""
    out: list[Episode] = []
    placements = sorted(caseload.placements[child_id], key=lambda p: p.start)
    for period in sorted(caseload.periods[child_id], key=lambda p: p.start):
        within = [p for p in placements
                  if p.start >= period.start and (period.end is None or p.start <= period.end)]
        if not within:
            out.append(Episode(period, None, period.start, period.end, period.start_reason, period.end_reason))
            continue
        for n, placement in enumerate(within):
            start = period.start if n == 0 else placement.start
            last = n == len(within) - 1
            end = period.end if last else (placement.end or within[n + 1].start)
            ended = period.end_reason if last else "X1"
            out.append(Episode(period, placement, start, end if (end or not last) else None,
                               period.start_reason if n == 0 else "P", ended if end else ""))
    return out


def tables(caseload: Caseload, year: int) -> list[Table]:
    """The return's five files for the collection year ending 31 March `year`."""
    first, last = year_bounds(year)
    header: list[list[str]] = []
    episodes: list[list[str]] = []
    reviews: list[list[str]] = []
    missing: list[list[str]] = []
    workers: list[list[str]] = []
    for child in caseload.children:
        body = caseload.bodies.get(child.id)
        in_year = [e for e in episodes_of(caseload, child.id)
                   if e.start <= last and (e.end is None or e.end >= first)]
        if not in_year:
            continue
        code = child_code(child, body)
        dob = body.date_of_birth if body else None
        upn = UPN_UNKNOWN_UNDER_5 if (age_on(dob, last) or 0) < 5 else UPN_NOT_RECORDED
        sex = SEX.get((body.gender if body else "").lower(), "U")
        header.append([code, sex, dmy(dob),
                       ethnic_code(body.ethnicity if body else ""), upn,
                       "0" if sex == "F" else "", ""])
        for e in in_year:
            place = e.placement
            placement_body = caseload.placement_bodies.get(place.id) if place else None
            episodes.append([
                code, dmy(e.start), e.reason_new, e.period.legal_status, e.period.primary_need,
                CURRENT_PLACE.get(place.placement_type, place.placement_type) if place else "", place.provider_code if place else "",
                dmy(e.end if e.end and e.end <= last else None), e.reason_ended if e.end and e.end <= last else "",
                place.change_reason if place and e.reason_ended == "X1" and e.end and e.end <= last else "",
                (body.home_postcode if body else ""), (placement_body.postcode if placement_body else ""),
                place.urn if place else ""])
        for review in caseload.reviews[child.id]:
            day = review_day(review)
            if review.kind == "cic_review" and day and first <= day <= last:
                reviews.append([code, dmy(dob), dmy(day), review.participation or ""])
        for episode in caseload.missing[child.id]:
            if episode.start <= last and (episode.end is None or episode.end >= first):
                missing.append([code, dmy(dob), "A" if episode.absent else "M", dmy(episode.start),
                                dmy(episode.end if episode.end and episode.end <= last else None)])
        if child.worker_id:
            allocated = max(in_year[0].start, first)
            workers.append([code, dmy(dob), SW_PREFIX + child.worker_id.replace("-", "")[:8], dmy(allocated), "",
                            SW_REASON])
    return [Table("header", HEADER, header), Table("episodes", EPISODES, episodes),
            Table("reviews", REVIEWS, reviews), Table("missing", MISSING, missing),
            Table("sw_episodes", SW_EPISODES, workers)]

"""The Standard Safeguarding Dataset (data-to-insight/ssd-data-model): one CSV per table Seen can fill, with the
SSD's own table and column names (data/objects/ssd_*.yml), for the columns Seen holds. Dates are ISO; yes/no
columns are a strict Y or N (a visit where the child was not seen was "not seen alone", never blank).
"""

from __future__ import annotations

from storage.returns.common import YES_NO, Caseload, Table, iso, review_day, yes_no
from storage.returns.ssda903 import episodes_of
from storage.timescales.calendar import LONDON

PERSON = ("pers_person_id", "pers_legacy_id", "pers_forename", "pers_surname", "pers_gender", "pers_ethnicity",
          "pers_dob")
CLA_EPISODES = ("clae_cla_episode_id", "clae_person_id", "clae_cla_episode_start_date",
                "clae_cla_episode_start_reason", "clae_cla_primary_need_code", "clae_cla_episode_ceased_date",
                "clae_cla_episode_ceased_reason", "clae_cla_id", "clae_cla_placement_id", "clae_entered_care_date")
LEGAL_STATUS = ("lega_legal_status_id", "lega_person_id", "lega_legal_status", "lega_legal_status_start_date",
                "lega_legal_status_end_date")
CLA_PLACEMENT = ("clap_cla_placement_id", "clap_cla_placement_start_date", "clap_cla_placement_type",
                 "clap_cla_placement_urn", "clap_cla_placement_distance", "clap_cla_id", "clap_cla_placement_provider",
                 "clap_cla_placement_postcode", "clap_cla_placement_end_date", "clap_cla_placement_change_reason",
                 "clap_person_id")
CLA_REVIEWS = ("clar_cla_review_id", "clar_cla_id", "clar_cla_review_due_date", "clar_cla_review_date",
               "clar_cla_review_cancelled", "clar_cla_review_participation")
CLA_VISITS = ("clav_cla_visit_id", "clav_cla_id", "clav_person_id", "clav_cla_visit_date", "clav_cla_visit_seen",
              "clav_cla_visit_seen_alone")
CIN_VISITS = ("cinv_cin_visit_id", "cinv_person_id", "cinv_cin_visit_date", "cinv_cin_visit_seen",
              "cinv_cin_visit_seen_alone", "cinv_cin_visit_bedroom")
CP_VISITS = ("cppv_cp_visit_id", "cppv_person_id", "cppv_cp_plan_id", "cppv_cp_visit_date", "cppv_cp_visit_seen",
             "cppv_cp_visit_seen_alone", "cppv_cp_visit_bedroom")
CP_PLANS = ("cppl_cp_plan_id", "cppl_person_id", "cppl_cp_plan_start_date", "cppl_cp_plan_end_date")
CIN_PLANS = ("cinp_cin_plan_id", "cinp_person_id", "cinp_cin_plan_start_date", "cinp_cin_plan_end_date",
             "cinp_cin_plan_team", "cinp_cin_plan_worker_id")
CP_REVIEWS = ("cppr_cp_review_id", "cppr_person_id", "cppr_cp_plan_id", "cppr_cp_review_due", "cppr_cp_review_date",
              "cppr_cp_review_outcome_continue_cp", "cppr_cp_review_quorate", "cppr_cp_review_participation")
MISSING = ("miss_table_id", "miss_person_id", "miss_missing_episode_start_date", "miss_missing_episode_type",
           "miss_missing_episode_end_date", "miss_missing_rhi_offered", "miss_missing_rhi_accepted")


def tables(caseload: Caseload) -> list[Table]:
    """Every SSD table Seen fills, in the order the dataset lists them."""
    rows: dict[str, list[list[object]]] = {name: [] for name in (
        "person", "legal_status", "cla_episodes", "cla_placement", "cla_reviews", "cla_visits", "cin_plans",
        "cin_visits", "cp_plans", "cp_visits", "cp_reviews", "missing")}
    for child in caseload.children:
        person = child.id
        body = caseload.bodies.get(child.id)
        rows["person"].append([person, body.external_ref if body else "", body.first_name if body else "",
                               body.last_name if body else "", body.gender if body else "",
                               body.ethnicity if body else "", iso(body.date_of_birth if body else None)])
        for period in caseload.periods[child.id]:
            rows["legal_status"].append([period.id, person, period.legal_status, iso(period.start), iso(period.end)])
        for episode in episodes_of(caseload, child.id):
            place = episode.placement
            rows["cla_episodes"].append([
                place.id if place else episode.period.id, person, iso(episode.start), episode.reason_new,
                episode.period.primary_need, iso(episode.end), episode.reason_ended, episode.period.id,
                place.id if place else "", iso(episode.period.start)])
        for place in caseload.placements[child.id]:
            placed_in = caseload.period_on(child.id, place.start)
            placement_body = caseload.placement_bodies.get(place.id)
            rows["cla_placement"].append([
                place.id, iso(place.start), place.placement_type, place.urn,
                "" if place.distance_km is None else f"{place.distance_km:.1f}", placed_in.id if placed_in else "",
                place.provider_code, placement_body.postcode if placement_body else "", iso(place.end),
                place.change_reason, person])
        for plan in caseload.plans[child.id]:
            if plan.kind == "cp_plan":
                rows["cp_plans"].append([plan.id, person, iso(plan.start), iso(plan.ended)])
            elif plan.kind == "cin_plan":
                rows["cin_plans"].append([plan.id, person, iso(plan.start), iso(plan.ended), child.team_id,
                                          child.worker_id or ""])
        for review in caseload.reviews[child.id]:
            if review.kind == "cic_review":
                when = review.held_on or review.scheduled_for
                reviewed_in = caseload.period_on(child.id, when) if when else None
                rows["cla_reviews"].append([review.id, reviewed_in.id if reviewed_in else "", iso(review.scheduled_for),
                                            iso(review_day(review)), yes_no(review.cancelled),
                                            review.participation or ""])
            elif review.kind in ("cp_review", "initial_conference"):
                day = review_day(review) or review.scheduled_for
                plan_on = caseload.cp_plan_on(child.id, day) if day else None
                plan_id = review.plan_id or (plan_on.id if plan_on else "")
                rows["cp_reviews"].append([
                    review.id, person, plan_id, iso(review.scheduled_for), iso(review_day(review)),
                    yes_no(review.plan_continues) if review_day(review) else "",
                    yes_no(review.quorate) if review_day(review) else "", review.participation or ""])
        # The loop most of an export's time is spent in (an authority's visits): names looked up once per child.
        category, child_id = child.category, child.id
        cla_visits, cp_visits, cin_visits = rows["cla_visits"], rows["cp_visits"], rows["cin_visits"]
        for visit in caseload.visits[child_id]:
            day = visit.visited_at.astimezone(LONDON).date()  # the day in England, as the worker recorded it
            seen, alone = YES_NO[visit.seen], YES_NO[bool(visit.seen and visit.seen_alone)]
            if category == "cic":
                visited_in = caseload.period_on(child_id, day)
                cla_visits.append([visit.id, visited_in.id if visited_in else "", person, day.isoformat(), seen,
                                   alone])
            elif category == "cp":
                plan_on = caseload.cp_plan_on(child_id, day)
                cp_visits.append([visit.id, person, plan_on.id if plan_on else "", day.isoformat(), seen, alone,
                                  YES_NO[bool(visit.bedroom_seen)]])
            elif category in ("cin", "case_managed"):
                cin_visits.append([visit.id, person, day.isoformat(), seen, alone, YES_NO[bool(visit.bedroom_seen)]])
        for gone in caseload.missing[child.id]:
            rows["missing"].append([
                gone.id, person, iso(gone.start), "Absent" if gone.absent else "Missing", iso(gone.end),
                yes_no(gone.interview_offered_on is not None or gone.interview_held_on is not None),
                yes_no(gone.interview_accepted if gone.interview_accepted is not None
                       else gone.interview_held_on is not None)])
    columns = {"person": PERSON, "legal_status": LEGAL_STATUS, "cla_episodes": CLA_EPISODES,
               "cla_placement": CLA_PLACEMENT, "cla_reviews": CLA_REVIEWS, "cla_visits": CLA_VISITS,
               "cin_plans": CIN_PLANS, "cin_visits": CIN_VISITS, "cp_plans": CP_PLANS, "cp_visits": CP_VISITS,
               "cp_reviews": CP_REVIEWS, "missing": MISSING}
    return [Table(f"ssd_{name}", columns[name], rows[name]) for name in rows]

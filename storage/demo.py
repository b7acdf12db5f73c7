"""A demo caseload: realistic, deterministic and obviously fictional.

Two teams, six workers and about forty children across all four categories, with two years of visits,
wishes-and-feelings and life-story work, care plans and reviews. Some children are overdue, some were
not seen alone (with the reason), some are placed far outside the (fictional) authority of Seenshire.
Every name is made up; every postcode is in ZZ99, the pseudo-postcode for "no fixed abode".
"""

from __future__ import annotations

import io
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import cache, partial

from PIL import Image, ImageDraw
from sqlmodel import select

from storage.models import (
    CarePeriod,
    CarePlan,
    CarePlanAction,
    CarePlanActionBody,
    CarePlanBody,
    Child,
    ChildBody,
    LifeStoryBody,
    LifeStoryEntry,
    ManagedTeam,
    MissingEpisode,
    MissingEpisodeBody,
    Photo,
    Placement,
    PlacementBody,
    RecordStatus,
    Review,
    ReviewBody,
    Role,
    SafetyScore,
    Team,
    Visit,
    VisitBody,
    WishesAndFeelings,
    WishesBody,
    Worker,
)
from storage.store import Store, hash_password
from storage.timescales.calendar import LONDON, add_months, today_in_england

DEMO_PASSWORD = "seen-demo"
HOME_AUTHORITY = "Seenshire"

FIRST_NAMES = [
    "Alfie", "Bella", "Caleb", "Daisy", "Ezra", "Freya", "Gus", "Hattie", "Isaac", "Jasmine", "Kai", "Luna",
    "Milo", "Nia", "Oscar", "Poppy", "Quinn", "Rosie", "Sami", "Tilly", "Umar", "Violet", "Wren", "Xander",
    "Yara", "Zach", "Amelie", "Bodhi", "Cleo", "Dexter", "Ellis", "Fern", "Gideon", "Hallie", "Ivo", "Juno",
    "Kit", "Lyra", "Marnie", "Noor",
]
# The gender a made-up name reads as; a name that could be anyone's takes the drawn one.
NAME_GENDERS = {
    **dict.fromkeys(["Alfie", "Caleb", "Ezra", "Gus", "Isaac", "Kai", "Milo", "Oscar", "Umar", "Xander", "Zach",
                     "Bodhi", "Dexter", "Gideon", "Ivo"], "Male"),
    **dict.fromkeys(["Bella", "Daisy", "Freya", "Hattie", "Jasmine", "Luna", "Nia", "Poppy", "Rosie", "Tilly",
                     "Violet", "Yara", "Amelie", "Cleo", "Fern", "Hallie", "Lyra", "Marnie"], "Female"),
}
SURNAMES = [
    "Applewick", "Brambleton", "Cobblestone", "Dandelion", "Elderflower", "Foxglove", "Gooseberry",
    "Hedgerow", "Inkwell", "Juniper", "Kettleby", "Lavenderfield", "Marmalade", "Nettlebed", "Oatcake",
    "Periwinkle", "Quillfeather", "Rosehip", "Sorrelwood", "Thistledown",
]
OUT_OF_AREA = [("Cumberland", "Whitehaven", 412.0), ("Cornwall", "Bodmin", 389.5), ("Kent", "Margate", 165.2),
               ("Northumberland", "Alnwick", 455.8), ("Norfolk", "Cromer", 231.4), ("Devon", "Barnstaple", 310.0)]
IN_AREA_TOWNS = ["Seenbury", "Little Seenford", "Upper Wold", "Marshby"]
ETHNICITIES = ["White British", "Mixed White and Black Caribbean", "Asian British - Pakistani",
               "Black British - African", "White Irish", "Mixed White and Asian", "Gypsy/Roma"]
LANGUAGES = ["English", "English", "English", "Urdu", "Polish", "Somali", "British Sign Language"]
RELIGIONS = ["None", "Christian", "Muslim", "None", "Not stated", "Sikh"]
CHILD_WORDS = [
    "I like it here because I have my own room and the dog sleeps on my bed.",
    "I miss my mum. I want to see her more than on Saturdays.",
    "School is ok but Jayden keeps taking my pencil case.",
    "I don't want to talk today. Can we go to the park next time?",
    "My carer makes pancakes on Sundays. That's the best bit.",
    "I want to stay here until I'm grown up.",
    "I'm worried about my little brother. Is he alright?",
    "I got a gold star for my reading. I read a whole chapter book.",
    "I don't like it when people shout. It's quiet here.",
    "Can I have a phone? Everyone in my class has one.",
]
OBSERVATIONS = [
    "The bedroom was clean and personalised with posters and photos. The child showed me a new drawing.",
    "The child greeted me at the door and showed me their homework. The carer was present in the kitchen.",
    "The home was warm and tidy. Food was in the cupboards. The child was dressed appropriately.",
    "The child was playing a board game with the carer's son and was smiling and chatty.",
]
ANALYSIS = [
    "The child appears settled and has a warm relationship with the carer.",
    "I think the child is anxious about contact; this needs exploring at the next review.",
    "The placement continues to meet the child's needs; no new worries today.",
    "The child's presentation suggests they are still processing the move; more direct work is planned.",
]


def is_empty(store: Store) -> bool:
    with store.session() as session:
        return session.exec(select(Child).limit(1)).first() is None


def create_demo(store: Store, today: date | None = None, seed: int = 2026) -> dict[str, int]:
    """Fills an empty store with the demo caseload, relative to `today`. Returns counts of what it made."""
    today = today or today_in_england()
    rng = random.Random(seed)
    counts: dict[str, int] = {}

    def count(kind: str) -> None:
        counts[kind] = counts.get(kind, 0) + 1

    with store.session() as session:
        cic_team = Team(id=_id(rng), name="Children in Care Team")
        cin_team = Team(id=_id(rng), name="Children in Need and Disabled Children Team")
        session.add(cic_team)
        session.add(cin_team)
        password = hash_password(DEMO_PASSWORD)

        def worker(username: str, name: str, role: Role, team: Team, manager: Worker | None = None) -> Worker:
            w = Worker(id=_id(rng), username=username, display_name=name, role=role.value, team_id=team.id,
                       manager_id=manager.id if manager else None, password_hash=password)
            session.add(w)
            count("workers")
            return w

        amara = worker("amara", "Amara Okafor", Role.manager, cic_team)
        ben = worker("ben", "Ben Castle", Role.practitioner, cic_team, amara)
        chloe = worker("chloe", "Chloe Dunmore", Role.practitioner, cic_team, amara)
        dev = worker("dev", "Dev Patel", Role.manager, cin_team)
        erin = worker("erin", "Erin Frost", Role.practitioner, cin_team, dev)
        femi = worker("femi", "Femi Adeyemi", Role.practitioner, cin_team, dev)
        worker("admin", "Sam Admin", Role.admin, cic_team)
        session.flush()
        session.add(ManagedTeam(manager_id=amara.id, team_id=cic_team.id))
        session.add(ManagedTeam(manager_id=dev.id, team_id=cin_team.id))
        session.flush()

        plan = ["cic"] * 16 + ["cin"] * 12 + ["cp"] * 7 + ["case_managed"] * 5
        for index, category in enumerate(plan):
            team = cic_team if category == "cic" else cin_team
            owner = (ben, chloe)[index % 2] if category == "cic" else (erin, femi)[index % 2]
            _demo_child(store, session, rng, today, index, category, team, owner, count)
        # Care leavers come last, from their own random stream: the children above stay as they were.
        leavers = random.Random(seed + 1)
        for n, owner in enumerate((ben, chloe)):
            _demo_care_leaver(store, session, leavers, today, len(plan) + n, cic_team, owner, count)
    return counts


def _demo_care_leaver(store, session, rng, today, index, team, owner, count) -> None:  # noqa: ANN001
    """A young person who left care: where they live now (one moved last week), the personal adviser's visits
    every month or so, and pathway plan reviews."""
    write = partial(store.write, at=datetime(today.year, today.month, today.day, 8, 30, tzinfo=LONDON))
    dob = today - timedelta(days=(18 + index % 2) * 365 + 40)
    since = dob + timedelta(days=18 * 365 + 5)
    child = Child(id=_id(rng), category="care_leaver", team_id=team.id, worker_id=owner.id, birth_year=dob.year,
                  legal_status="", care_leaver_since=since)
    first_name = FIRST_NAMES[index % len(FIRST_NAMES)]
    body = ChildBody(first_name=first_name, last_name=SURNAMES[(index * 7) % len(SURNAMES)], date_of_birth=dob,
                     gender=NAME_GENDERS.get(first_name, "Female"), external_ref=f"DEMO{1000 + index}")
    child.ref_hash = store.ref_hash(body.external_ref)
    write(session, child, body, action="create")
    count("children")
    moved = today - timedelta(days=5) if index % 2 == 0 else since + timedelta(days=20)
    for start, end in ((since, moved), (moved, None)):
        home = Placement(id=_id(rng), child_id=child.id, placement_type="H5" if end is None else "P2", start=start,
                         end=end, local_authority=HOME_AUTHORITY)
        write(session, home, PlacementBody(address=f"{rng.randint(1, 99)} Pretend Lane", town=rng.choice(IN_AREA_TOWNS)),
              action="create")
        count("placements")
    day = since + timedelta(days=5)
    while day < today - timedelta(days=10):
        moment = _at(day, rng)
        visit = Visit(id=_id(rng), child_id=child.id, worker_id=owner.id, visited_at=moment, location="other",
                      seen=True, seen_alone=True, status=RecordStatus.signed_off.value, created_at=moment,
                      written_up_at=moment + timedelta(hours=2), submitted_at=moment + timedelta(hours=2))
        write(session, visit, VisitBody(observations="Met at the flat; talked about college and money."),
              action="create")
        count("visits")
        day += timedelta(days=rng.randint(25, 40))
    review_day = since + timedelta(days=150)
    while review_day < today:
        review = Review(id=_id(rng), child_id=child.id, kind="pathway_plan_review", scheduled_for=review_day,
                        held_on=review_day)
        write(session, review, ReviewBody(notes="Pathway plan reviewed with the young person."), action="create")
        count("reviews")
        review_day += timedelta(days=170)


def _demo_health_and_missing(store, session, write, today, index, child, dob, start) -> None:  # noqa: ANN001
    """A child in care's health assessments on time, and for three children a missing episode: one missing now,
    one back two days ago with no interview yet, one long over with the interview held. No random draws."""
    day, kind = start + timedelta(days=15), "initial_health_assessment"
    while day < today:
        under_five = day < add_months(dob, 60)
        review = Review(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"seen-demo-health:{child.id}:{day}")), child_id=child.id,
                        kind=kind, scheduled_for=day, held_on=day, under_five=under_five)
        write(session, review, ReviewBody(notes="Health assessment: immunisations up to date."), action="create")
        day, kind = day + timedelta(days=170 if under_five else 350), "review_health_assessment"
    episodes = {4: (today - timedelta(days=1), None, None), 5: (today - timedelta(days=4), today - timedelta(days=2), None),
                6: (start + timedelta(days=30), start + timedelta(days=31), start + timedelta(days=33))}
    if index in episodes:
        begun, back, interview = episodes[index]
        episode = MissingEpisode(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"seen-demo-missing:{child.id}")),
                                 child_id=child.id, start=begun, end=back, interview_held_on=interview,
                                 interview_offered_on=interview, interview_accepted=True if interview else None)
        write(session, episode, MissingEpisodeBody(
            child_said="I went to my friend's; I was angry about contact being cancelled." if interview else ""),
            action="create")


@cache
def _badge_photo() -> bytes:
    """A drawn swimming badge on a pool's blue: a life-story photo that shows no one."""
    image = Image.new("RGB", (480, 360), "#7fc8e8")
    draw = ImageDraw.Draw(image)
    for y in range(40, 360, 60):
        draw.line([(0, y), (480, y)], fill="#5fb0d8", width=6)
    draw.ellipse([150, 90, 330, 270], fill="#f2c230", outline="#b8860b", width=8)
    draw.text((212, 170), "25 m", fill="#1d4f91")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _at(day: date, rng: random.Random) -> datetime:
    local = datetime(day.year, day.month, day.day, rng.choice([9, 10, 11, 13, 14, 15, 16]), rng.choice([0, 15, 30, 45]),
                     tzinfo=LONDON)
    return local.astimezone(UTC)


def _demo_child(store, session, rng, today, index, category, team, owner, count) -> None:  # noqa: ANN001
    # Every mutable record was last changed on the demo's own morning, never on the real day the demo is made.
    changed_at = datetime(today.year, today.month, today.day, 8, 30, tzinfo=LONDON)
    write = partial(store.write, at=changed_at)
    age = rng.randint(2, 17)
    dob = today - timedelta(days=age * 365 + rng.randint(0, 364))
    # A few children are deliberately overdue so the dashboard has something to show.
    overdue = index % 5 == 3
    start = today - timedelta(days=rng.randint(120, 730))
    child = Child(id=_id(rng), category=category, team_id=team.id, worker_id=owner.id, birth_year=dob.year)
    first_name = FIRST_NAMES[index % len(FIRST_NAMES)]
    drawn = rng.choice(["Female", "Male", "Non-binary"])  # drawn always: the rest of the demo stays as it was
    body = ChildBody(
        first_name=first_name,
        last_name=SURNAMES[(index * 7) % len(SURNAMES)],
        date_of_birth=dob,
        gender=NAME_GENDERS.get(first_name, drawn),
        ethnicity=rng.choice(ETHNICITIES),
        first_language=rng.choice(LANGUAGES),
        religion=rng.choice(RELIGIONS),
        disability="Autism; uses a picture exchange system" if category == "case_managed" else rng.choice(["", "", "ADHD"]),
        home_address=f"{rng.randint(1, 99)} Pretend Lane, {rng.choice(IN_AREA_TOWNS)}",
        home_postcode=f"ZZ99 {rng.randint(1, 9)}{rng.choice('ABDEFG')}{rng.choice('HJLNPQ')}",
        external_ref=f"DEMO{1000 + index}",
    )
    if category == "cic":
        child.looked_after_since = start
        child.legal_status = rng.choice(["C2", "C2", "C1", "V2", "E1"])
        if index == 2:
            child.plan_visit_every = "4 weeks"  # the care plan asks for visits more often than reg 28
    elif category == "cp":
        child.legal_status = "S47"
        child.strategy_discussion = start
        if index % 7 != 6:  # one CP child is still waiting for the initial conference
            child.initial_conference = start + timedelta(days=19)
        else:
            child.strategy_discussion = today - timedelta(days=8)
            start = child.strategy_discussion
    elif category == "cin":
        child.legal_status = "S17"
        child.cin_plan_start = start
        if index == 17:
            child.plan_visit_every = "5 working days"  # the plan asks for a visit every week
        if index % 6 == 0:
            child.referral = today - timedelta(days=rng.randint(20, 70))
    else:
        child.legal_status = "S17"
        child.case_managed_since = start
    child.ref_hash = store.ref_hash(body.external_ref)
    write(session, child, body, action="create")
    count("children")
    if category == "cic":  # the period of care the statutory returns report (no random draws)
        write(session, CarePeriod(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"seen-demo-period:{child.id}")),
                                  child_id=child.id, start=start, legal_status=child.legal_status, primary_need="N1"),
              action="create")

    # Placements for children in care: some in Seenshire, some far away; some moved once.
    current_start = start
    if category == "cic":
        if index % 4 == 1:
            first = Placement(id=_id(rng), child_id=child.id, placement_type="U6", start=start,
                              end=start + timedelta(days=rng.randint(60, 150)), local_authority=HOME_AUTHORITY,
                              distance_km=round(rng.uniform(2, 15), 1), provider_code="PR1", urn="SC123456",
                              change_reason="CARPL")
            write(session, first, PlacementBody(provider="Seenshire Fostering", carer="Mr and Mrs Toffeeapple",
                                                      address="4 Make-Believe Close, Seenbury", postcode="ZZ99 1AB",
                                                      town="Seenbury"), action="create")
            count("placements")
            current_start = first.end
        kind = ["U4", "U6", "K2", "P1", "H5", "U3"][index % 6]
        far = index % 3 == 0
        la, town, distance = rng.choice(OUT_OF_AREA) if far else (HOME_AUTHORITY, rng.choice(IN_AREA_TOWNS),
                                                                   round(rng.uniform(1, 20), 1))
        placement = Placement(
            id=_id(rng), child_id=child.id, placement_type=kind, start=current_start, local_authority=la,
            out_of_area=far, distance_km=distance, long_term=kind in ("U4", "U1"),
            arrangement="parent_pending_assessment" if kind == "P1" and index % 2 else "standard",
            provider_code={"P1": "PR0", "K2": "PR4", "H5": "PR4"}.get(kind, "PR1" if la == HOME_AUTHORITY else "PR4"),
            urn="" if kind == "P1" else "SC" + str(100000 + index),
        )
        provider = {"K2": "Hilltop House (fictional) Ltd", "H5": "Stepping Stones Supported Living (fictional)",
                    "P1": "Birth parent"}.get(kind, "Independent Fostering Agency (fictional)")
        write(session, placement, PlacementBody(
            provider=provider, carer=rng.choice(["Ms Puddleduck", "Mr and Mr Crumpet", "Mrs Wafflebottom"]),
            address=f"{rng.randint(1, 200)} Imaginary Road, {town}", postcode=f"ZZ99 {rng.randint(1, 9)}XY",
            town=town), action="create")
        count("placements")

    if category == "cic":
        _demo_health_and_missing(store, session, write, today, index, child, dob, start)

    # Visits: roughly every 4-6 weeks, stopping early for the overdue children.
    interval = {"cic": 38, "cp": 12, "cin": 24, "case_managed": 60}[category]
    if category == "cp" and child.initial_conference is None:
        interval = 999
    last_day = today - timedelta(days=(interval * 2 + 10) if overdue else rng.randint(1, max(2, interval // 2)))
    day = current_start + timedelta(days=rng.randint(2, 6))
    visits = []
    while day <= last_day:
        visits.append(day)
        day += timedelta(days=rng.randint(max(5, interval - 10), interval))
    for n, visit_day in enumerate(visits):
        recent = (today - visit_day).days < 14
        seen = rng.random() > 0.05
        alone = seen and age >= 5 and rng.random() > 0.2
        reason = None
        if seen and not alone:
            reason = "inappropriate" if age < 5 else rng.choice(["refused", "unable"])
        written = _at(visit_day, rng) + timedelta(days=rng.choice([0, 0, 0, 1, 1, 2, 5]))
        # Never written up after the demo's today: a late write-up is still waiting, not from the future.
        written = min(written, datetime(today.year, today.month, today.day, 8, 30, tzinfo=LONDON).astimezone(UTC))
        visit = Visit(
            id=_id(rng), child_id=child.id, worker_id=owner.id, visited_at=_at(visit_day, rng),
            location="placement" if category == "cic" else rng.choice(["family_home", "school", "family_home"]),
            seen=seen, seen_alone=alone if seen else None, not_alone_reason=reason,
            bedroom_seen=(rng.random() > 0.3) if category == "cic" else None,
            status=RecordStatus.submitted.value if recent else RecordStatus.signed_off.value,
            written_up_at=written, submitted_at=written, supersedes=None,
        )
        visit.created_at = visit.visited_at
        if written < visit.visited_at:  # written up the same day: after the visit, not before it
            written = visit.written_up_at = visit.submitted_at = visit.visited_at + timedelta(hours=1)
        if not recent:
            visit.signed_off_at = written + timedelta(days=3)
        write(session, visit, VisitBody(
            present="Carer" if category == "cic" else "Parent",
            observations=rng.choice(OBSERVATIONS), analysis=rng.choice(ANALYSIS),
            child_words=rng.choice(CHILD_WORDS) if seen and age >= 4 else "",
            child_words_not_recorded_reason="" if seen and age >= 4 else "Too young to share views in words; observed play.",
            worries="Contact with dad is inconsistent." if n % 3 == 0 else "",
            working_well="Settled at school; good attendance." if n % 2 == 0 else "Warm relationship with carer.",
            needs_to_happen="Arrange life-story session." if n % 4 == 0 else "",
            safety_scale=[SafetyScore(who="Social worker", score=rng.randint(5, 9)),
                          SafetyScore(who="Child", score=rng.randint(4, 10))] if category == "cp" else [],
        ), action="create")
        count("visits")

    # Reviews on the child's statutory pattern.
    review_kind = {"cic": "cic_review", "cp": "cp_review", "cin": "cin_review", "case_managed": "case_managed_review"}[category]
    anchor = child.initial_conference if category == "cp" else start
    if anchor is not None:
        gaps = {"cic_review": [20, 90] + [182] * 5, "cp_review": [90] + [182] * 5,
                "cin_review": [91] * 10, "case_managed_review": [182] * 5}[review_kind]
        day = anchor
        for gap in gaps:
            day = day + timedelta(days=gap - rng.randint(0, 5))
            if day > today - timedelta(days=3):
                break
            review = Review(id=_id(rng), child_id=child.id, kind=review_kind, scheduled_for=day, held_on=day,
                            participation="PN0" if add_months(dob, 48) > day else "PN1",
                            quorate=True if review_kind == "cp_review" else None,
                            plan_continues=True if review_kind == "cp_review" else None)
            write(session, review, ReviewBody(notes="Review held; plan updated."), action="create")
            count("reviews")
        upcoming = Review(id=_id(rng), child_id=child.id, kind=review_kind,
                          scheduled_for=today + timedelta(days=rng.randint(5, 60)))
        write(session, upcoming, ReviewBody(), action="create")
        count("reviews")

    # Wishes and feelings, and life story for children in care.
    for n in range(rng.randint(1, 3)):
        on = today - timedelta(days=rng.randint(10, 300))
        work = WishesAndFeelings(id=_id(rng), child_id=child.id, worker_id=owner.id, on=on,
                                 method=rng.choice(["conversation", "three_houses", "drawing", "app"]),
                                 status=RecordStatus.submitted.value, submitted_at=_at(on, rng))
        write(session, work, WishesBody(
            child_words=rng.choice(CHILD_WORDS),
            reflection="They spoke more freely while drawing; I will use the three houses again.",
            shared_with="Independent reviewing officer" if n == 0 else "Carer"), action="create")
        count("wishes_and_feelings")
    if category == "cic":
        for section, title, text in [
            ("born", "The day you were born", "You were born on a sunny morning in the spring."),
            ("lived", "Your home now", "You live with your carers, who have a dog called Biscuit."),
            ("achievements", "Swimming badge", "You swam 25 metres without stopping! Everyone cheered."),
        ]:
            on = today - timedelta(days=rng.randint(10, 400))
            submitted_at = _at(on, rng)
            entry = LifeStoryEntry(id=_id(rng), child_id=child.id, worker_id=owner.id, on=on, section=section,
                                   status=RecordStatus.submitted.value, submitted_at=submitted_at)
            write(session, entry, LifeStoryBody(title=title, text=text), action="create")
            count("life_story")
            if section == "achievements":
                # Its id and time come from the entry, not the random stream: the rest of the demo stays as it was.
                photo = Photo(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"seen-demo-photo:{entry.id}")),
                              record_id=entry.id, child_id=child.id, created_at=submitted_at)
                write(session, photo, action="create", blob=_badge_photo())
                count("photos")

    # A plan with open and completed actions; one overdue.
    kind = {"cic": "care_plan", "cp": "cp_plan", "cin": "cin_plan", "case_managed": "care_plan"}[category]
    care_plan = CarePlan(id=_id(rng), child_id=child.id, kind=kind, start=start)
    write(session, care_plan, CarePlanBody(summary="Keep the child safe, settled and in touch with family."),
                action="create")
    count("care_plans")
    for n, (text, owner_name) in enumerate([
        ("Arrange a dental check-up", "Carer"),
        ("Complete life-story session about moving", "Social worker"),
        ("Request school support plan review", "Designated teacher"),
    ]):
        due = today + timedelta(days=rng.randint(-40, 60))
        done = n == 0
        action = CarePlanAction(id=_id(rng), plan_id=care_plan.id, child_id=child.id, due=due,
                                status="done" if done else rng.choice(["open", "in_progress"]),
                                completed_on=min(due - timedelta(days=2), today) if done else None)  # never after today
        write(session, action, CarePlanActionBody(
            description=text, owner=owner_name, outcome="Done: seen by the dentist, no treatment needed." if done else ""),
            action="create")
        count("care_plan_actions")
    session.flush()

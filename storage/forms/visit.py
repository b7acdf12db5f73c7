"""The statutory visit's form: every field, once (storage/visits.py checks and keeps it, pwa/pages/visit.py
shows it, the offline page builds it from this too)."""

from __future__ import annotations

from storage.forms import CONFIRM_DATE, Column, Field, Form
from storage.models import NOT_ALONE_REASONS, VISIT_LOCATIONS

# Who scores each safety goal: the column's name (kept in the sealed body), the person, their score in a sentence.
SAFETY_GOAL_SCORERS = {"worker": ("Social worker", "social worker's score"),
                       "parent": ("Parent or carer", "parent's or carer's score"),
                       "child": ("Child", "child's score"),
                       "others": ("Others (family network)", "others' score")}

# How the child took part in the visit (issue 18): each way, and the looked-after review's participation code it
# points to if the child takes part in their review the same way (storage/child_voice.participation says which).
TOOK_PART = {"spoke": "They spoke for themselves",
             "advocate": "An advocate or interpreter spoke for them",
             "without_words": "They showed their views without words (play, drawing, signs)",
             "no_views": "They were there but did not give their views"}
TOOK_PART_CODE = {"spoke": "PN1", "advocate": "PN2", "without_words": "PN3", "no_views": "PN4"}

VISIT = Form("visit", "Visit", "visit", [
    Field("visit_date", "Date of the visit", "date", section="When and where", kept="row", required=True,
          past="visit", message="Enter the date of the visit."),
    Field("visit_time", "Time of the visit", "time", kept="row",
          message="Enter the time of the visit as hours and minutes, like 14:30."),
    Field("location", "Where the visit took place", "choice", choices=VISIT_LOCATIONS, widget="column", kept="row",
          default="placement", required=True, message="Choose where the visit took place."),
    Field("location_detail", "Where exactly (optional)"),
    Field("seen", "Did you see the child?", "yesno", section="Seeing the child", kept="row", default="yes", required=True,
          message="Say whether you saw the child."),
    Field("seen_alone", "Did you see the child alone?", "yesno", asked_when={"seen": "yes"}, kept="row",
          required=True, message="Say whether you saw the child alone."),
    Field("not_alone_reason", "If not alone, why not", "choice", choices=NOT_ALONE_REASONS, widget="column",
          hint="The Care Planning Regulations (reg 29) ask for the reason.",
          asked_when={"seen": "yes", "seen_alone": "no"}, kept="row", required=True,
          message="Choose why the child was not seen alone: the Care Planning Regulations (reg 29) ask for the reason."),
    Field("bedroom_seen", "Did you see the child's bedroom?", "yesno", categories=("cic",), kept="row",
          required=True, message="Say whether you saw the child's bedroom."),
    Field("present", "Who else was there"),
    Field("observations", "Observations (fact)", "longtext", hint="What you saw and heard: facts only.",
          section="What you saw and think", required=True,
          message="Write what you saw and heard (your observations) before submitting: the visit is empty without them."),
    Field("analysis", "Analysis (your professional opinion)", "longtext", hint="What you think it means, and why."),
    Field("child_words", "In the child's own words", "longtext", voice=True, hint="Write what the child said, as they said it.",
          section="The child's wishes and feelings", required=True, required_when={"seen": "yes"},
          unless="child_words_not_recorded_reason",
          message="Write the child's wishes and feelings in their own words, or say why not."),
    Field("child_words_not_recorded_reason", "If the child's words are not recorded, why not"),
    Field("took_part", "How did the child take part?", "choice", choices=TOOK_PART, widget="column",
          asked_when={"seen": "yes"},
          hint="Their next looked-after review's participation code can be taken from it."),
    Field("worries", "What are we worried about?", "longtext", section="Signs of Safety"),
    Field("working_well", "What is working well?", "longtext"),
    Field("needs_to_happen", "What needs to happen?", "longtext"),
    Field("safety_scale", "Safety scale", "rows", hint="0 means the child is not safe, 10 means safe enough to close.",
          columns=(Column("who", "Who was asked"), Column("score", "Score 0–10", "number", 0, 10)),
          row_word="a person's score", row_field="safety_scale_row"),
    # Each worry as a danger statement paired with its safety goal, scored by each person asked; a later visit
    # opens with the child's latest pairs (their `pair_id` carried forward) to be scored again.
    Field("safety_goals", "Worries and safety goals", "rows",
          hint="Each danger statement with the safety goal that answers it, scored by each person asked: "
               "0 means the worry is certain to happen, 10 that the goal is met. Leave a score blank if not asked.",
          columns=(Column("pair_id", "Pair", "hidden"),
                   Column("danger", "Worried that…", "longtext", noun="danger statement (Worried that…)",
                          paired="goal"),
                   Column("goal", "What needs to happen…", "longtext", noun="safety goal (What needs to happen…)",
                          paired="danger"),
                   *(Column(who, f"{person} 0–10", "number", 0, 10, noun=noun)
                     for who, (person, noun) in SAFETY_GOAL_SCORERS.items())),
          row_word="a worry and its safety goal", row_field="safety_goal_row"),
    Field("actions", "Actions arising", "rows", section="Actions arising",
          hint="Each action is added to the child's care plan when you submit.",
          columns=(Column("description", "Action", "longtext"), Column("owner", "Who will do it"),
                   Column("due", "Due by", "date")),
          row_word="an action", row_field="action_row"),
    Field("supersedes", "This corrects an earlier visit: sending it adds a new visit that replaces that one.",
          "note", kept="row"),
    CONFIRM_DATE,
])

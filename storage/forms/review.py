"""The review form on the child's page: a looked-after review, a child protection review conference or a pathway
plan review, with what the statutory returns need from it (storage/reviews.py checks and keeps it,
pwa/returns_forms.py shows it, the import checks its reviews the same way)."""

from __future__ import annotations

from storage.forms import Field, Form
from storage.returns.rules import PARTICIPATION

REVIEW_KINDS = {"cic_review": "Looked-after review (child in care)",
                "cp_review": "Child protection review conference",
                "pathway_plan_review": "Pathway plan review (care leaver)"}
# Asked before saving what a return would reject but the worker may put right later (storage/returns/rules.py).
CONFIRM_RETURNS = Field("returns_confirmed", "Save it anyway: I will put this right before the return is sent",
                        "yesno", kept="none", only_when_asked=True)
HELD = {"cancelled": "no"}

REVIEW = Form("review", "Review", "review", [
    Field("kind", "Kind of review", "choice", choices=REVIEW_KINDS, kept="row", required=True, widget="column",
          message="Choose the kind of review."),
    Field("held_on", "Date of the review", "date", kept="row", required=True, past="review",
          hint="If it was cancelled, the day it was to be held."),
    Field("cancelled", "Was the review cancelled?", "yesno", kept="row", default="no", required=True,
          message="Say whether the review was cancelled."),
    Field("participation", "How the child took part (SSDA903 participation)", "choice",
          choices={code: f"{code}: {words}" for code, words in PARTICIPATION.items()}, kept="row", widget="select",
          asked_when={"kind": "cic_review", **HELD},
          message="Choose how the child took part, PN0 to PN7."),
    Field("quorate", "Was the conference quorate?", "yesno", kept="row", asked_when={"kind": "cp_review", **HELD},
          required=True, message="Say whether the conference was quorate."),
    Field("plan_continues", "Does the child protection plan continue?", "yesno", kept="row",
          asked_when={"kind": "cp_review", **HELD}, required=True,
          message="Say whether the child protection plan continues."),
    Field("notes", "Notes", "longtext"),
    CONFIRM_RETURNS,
])

"""The placement form on the child's page: start a new placement, or end the current one, with what the SSDA903
return needs (storage/placements.py checks and keeps it, pwa/returns_forms.py shows it; the import's placements
pass the same checks)."""

from __future__ import annotations

from storage.forms import Field, Form
from storage.forms.review import CONFIRM_RETURNS
from storage.models import PLACEMENT_TYPES
from storage.returns.rules import CHANGE_REASONS, PROVIDERS

ACTIONS = {"start": "Start a new placement", "end": "End the current placement"}
STARTING = {"action": "start"}
ENDING = {"action": "end"}

PLACEMENT = Form("placement", "Placement", "placement", [
    Field("action", "What has happened", "choice", choices=ACTIONS, kept="none", required=True, widget="column",
          message="Choose whether a placement starts or the current one ends."),
    Field("placement_type", "Placement type (SSDA903)", "choice", kept="row", widget="select", required=True,
          choices={code: f"{code}: {words}" for code, words in PLACEMENT_TYPES.items()}, asked_when=STARTING,
          message="Choose the placement type."),
    Field("start", "Date the placement started", "date", kept="row", required=True, past="placement's start",
          asked_when=STARTING),
    Field("provider_code", "Placement provider (SSDA903)", "choice", choices=PROVIDERS, kept="row",
          widget="select", asked_when=STARTING, message="Choose the placement provider, PR0 to PR5."),
    Field("urn", "Ofsted URN", kept="row", asked_when=STARTING,
          hint="The provider's Ofsted unique reference number; XXXXXXX if it has none."),
    Field("provider", "Provider or carer", asked_when=STARTING),
    Field("postcode", "Placement postcode", asked_when=STARTING),
    Field("end", "Date the placement ended", "date", kept="row", required=True, past="placement's end",
          asked_when=ENDING),
    Field("change_reason", "Reason for the change (SSDA903)", "choice", choices=CHANGE_REASONS, kept="row",
          widget="select", asked_when=ENDING, message="Choose the reason for the change."),
    CONFIRM_RETURNS,
])

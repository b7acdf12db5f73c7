"""The form that adds an action to a care plan (storage/care_plans.py checks and keeps it,
pwa/pages/care_plan.py shows it). A visit's actions arising become these too (storage/visits.py)."""

from __future__ import annotations

from storage.forms import Field, Form

CARE_PLAN_ACTION = Form("care_plan_action", "Care plan action", "action", [
    Field("plan_id", "The plan this action belongs to", "hidden", kept="row", required=True,
          message="Choose the plan this action belongs to."),
    Field("description", "What needs to be done", required=True, message="Say what needs to be done."),
    Field("owner", "Who will do it", required=True,
          message="Say who will do it (a person or a role, like \"Carer\")."),
    Field("due", "Due date", "date", kept="row", format_message="Give the due date as a date, or leave it blank."),
])

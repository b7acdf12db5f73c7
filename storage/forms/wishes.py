"""The wishes-and-feelings form (storage/wishes.py checks and keeps it, pwa/pages/wishes.py shows it, the
offline page builds it from this too)."""

from __future__ import annotations

from storage.forms import CONFIRM_DATE, Field, Form
from storage.models import WISHES_METHODS

WISHES = Form("wishes_and_feelings", "Wishes and feelings", "wishes and feelings record", [
    Field("on", "Date of the work", "date", kept="row", required=True, past="direct work"),
    Field("method", "How you worked together", "choice", choices=WISHES_METHODS, kept="row", default="conversation",
          required=True, message="Choose how you worked with the child (conversation, three houses, drawing...)."),
    Field("child_words", "The child's words, as they said them", "longtext", voice=True, required=True,
          message="Write the child's words, as they said them: this record is for their voice."),
    Field("reflection", "Your reflection (your view)", "longtext"),
    Field("shared_with", "Shared with (who has seen this work)"),
    # A correction begun on the screen: which record it replaces travels with the draft.
    Field("supersedes", "This corrects an earlier record: sending it adds a new record that replaces that one.",
          "note", kept="row"),
    CONFIRM_DATE,
])

"""The life-story entry's form (storage/life_story.py checks and keeps it, pwa/pages/life_story.py shows
it, the offline page builds it from this too). Its photos are not fields: storage/photos.py keeps them."""

from __future__ import annotations

from storage.forms import Field, Form
from storage.models import LIFE_STORY_SECTIONS
from storage.photos import DRAFT_PHOTO_MAX_BYTES, DRAFT_PHOTOS_MAX_BYTES, PHOTO_MAX_SIDE, PHOTOS_PER_ENTRY

LIFE_STORY = Form("life_story", "Life story entry", "life-story entry", [
    Field("on", "Date", "date", kept="row", required=True, past="entry"),
    Field("section", "Chapter of the book", "choice", choices=LIFE_STORY_SECTIONS, widget="select", kept="row",
          required=True, message="Choose the chapter of the life-story book this belongs in."),
    Field("title", "Title", required=True, message="Give the entry a title, like \"My first day at school\"."),
    # Required unless the entry has a photo: storage/life_story.py counts them.
    Field("text", "The story, written for the child", "longtext",
          message="Write the story for this entry, or add a photo."),
    # A correction begun on the screen: the entry it replaces, and which of that entry's photos stay.
    Field("corrects", "This corrects an earlier entry: sending it puts the corrected entry in the book in place of "
                      "that one, with the photos kept from it.", "note", kept="none"),
    Field("keep", "Photos kept from the entry it corrects", "hidden", kept="none"),
],
    # The phone makes each photo no bigger than the server would, and keeps to the server's limits, so a
    # draft it accepts is one the server takes.
    photos={"max": PHOTOS_PER_ENTRY, "max_side": PHOTO_MAX_SIDE, "max_bytes": DRAFT_PHOTO_MAX_BYTES,
            "max_total_bytes": DRAFT_PHOTOS_MAX_BYTES})

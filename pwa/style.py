"""The look every screen shares, after GOV.UK's: sentence-case buttons, readable hints, the error summary's
box, and one style for the child's own words. Added once for every page (pwa/app.py)."""

from __future__ import annotations

from nicegui import ui

# The fixed header's height and a little air: what scrolls into view (a field an error summary links to,
# the summary itself) stops below the header instead of under it.
HEADER_CLEARANCE = "5rem"

SHARED_CSS = f"""
/* Buttons say what they do in sentence case, as GOV.UK's do: capitals are harder to read. */
.q-btn, .q-tab, .q-item {{ text-transform: none; letter-spacing: normal; }}
/* Hints and field messages: at least 14 px, and dark enough for AA contrast (Quasar's are 12 px, 54% black). */
.q-field__bottom {{ font-size: 0.875rem; line-height: 1.25rem; color: #383f43; }}
.q-field__bottom .q-field__messages, .q-field__counter {{ color: inherit; }}
/* Nothing a link or focus brings into view hides under the fixed header. */
html {{ scroll-padding-top: {HEADER_CLEARANCE}; }}
input, textarea, select, [tabindex], .q-field, .seen-error-summary {{ scroll-margin-top: {HEADER_CLEARANCE}; }}
/* The header's menu: a list of links hanging below the header, each a full-width target. */
.seen-menu {{ position: absolute; top: 100%; right: 0; left: 0; background: #fff; color: #0b0c0c;
  border-bottom: 4px solid #1d4f91; box-shadow: 0 4px 8px rgb(0 0 0 / .2); }}
.seen-menu ul {{ list-style: none; margin: 0 auto; padding: 0; max-width: 48rem; }}
.seen-menu a {{ display: block; padding: 0.75rem 1rem; min-height: 3rem; font-size: 1.125rem; color: #1d4f91;
  text-decoration: underline; border-top: 1px solid #dfe1e3; }}
.seen-menu a:focus {{ background: #ffdd00; color: #0b0c0c; outline: none; }}
/* GOV.UK's error summary: a red-bordered box at the top titled "There is a problem", each problem a link. */
.seen-error-summary {{ border: 5px solid #b3261e; padding: 1rem; background: #fff; color: #0b0c0c; }}
.seen-error-summary:empty {{ display: none; }}
.seen-error-summary:focus {{ outline: 3px solid #ffdd00; outline-offset: 0; }}
.seen-error-summary a {{ color: #b3261e; font-weight: 700; text-decoration: underline; }}
.seen-error-summary a:focus {{ background: #ffdd00; color: #0b0c0c; outline: none; }}
/* The child's words, one style everywhere (timeline, wishes, sign-off, the forms): set apart from the
   worker's words by a purple rule, in the page's own face so they read as easily as anything else. */
.seen-child-words {{ border-left: 5px solid #6f2da8; background: #f6f0fb; color: #1f0a33; padding: 0.5rem 0.75rem;
  font-size: 1.125rem; line-height: 1.5; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }}
.seen-child-words-input .q-field__control {{ border-left: 5px solid #6f2da8; background: #f6f0fb; }}
.seen-child-words-input textarea {{ font-size: 1.125rem; line-height: 1.5; color: #1f0a33; }}
"""


def child_words(words: str, whose: str = "") -> None:
    """The child's words, labelled with whose they are, in the one style they have on every screen."""
    ui.label(f"In {whose}'s words" if whose else "In the child's own words").classes("text-sm font-bold")
    ui.label(words).classes("seen-child-words w-full").props('role="note"').mark("child-words")

"""GOV.UK's error summary, one component for every form: a box at the top titled "There is a problem", each
problem a link that moves focus to its field, and focus moved to the box when a save is refused.

A form makes its box with `error_summary()` where the summary belongs (at the top of the form), and on a
refused save calls `show_problems(box, problems, fields=...)`, `fields` mapping each problem's key (the
storage form's field name) to the element that takes it. The box hides itself while it is empty, so
`box.clear()` is all a fresh attempt needs. The links are plain `#id` links; FOCUS_SCRIPT (added to every
page, pwa/app.py) makes one move focus into its field, and the styles (pwa/style.py) keep the field and
the box clear of the fixed header.
"""

from __future__ import annotations

from collections.abc import Mapping

from nicegui import ui

TITLE = "There is a problem"

# A link in a summary focuses its field: the element itself if it takes focus, else the first control in
# it (a Quasar input's <input>, a radio group's first radio), else the element made focusable; then
# scrolls the field (its whole box, label included) into view.
FOCUS_SCRIPT = """<script>
document.addEventListener('click', (event) => {
  const link = event.target.closest('.seen-error-summary a[href^="#"]');
  if (!link) return;
  const target = document.getElementById(decodeURIComponent(link.hash.slice(1)));
  if (!target) return;
  event.preventDefault();
  const controls = 'input:not([type=hidden]):not([disabled]), textarea, select, [tabindex="0"]';
  let field = target.matches(controls) ? target : target.querySelector(controls);
  if (!field) { target.setAttribute('tabindex', '-1'); field = target; }
  field.focus({preventScroll: true});
  (target.closest('.q-field') || target).scrollIntoView({block: 'start'});
});
</script>"""


def error_summary() -> ui.column:
    """The (empty, so hidden) box a form's problems are shown in: place it at the top of the form."""
    return ui.column().classes("seen-error-summary w-full gap-1").props('role="alert" tabindex="-1"')


def dom_id(element: ui.element) -> str:
    """The element's id in the page: NiceGUI's, unless a Quasar field's `for` gives its control another."""
    return str(element.props.get("for") or f"c{element.id}")


def show_problems(box: ui.column, problems: Mapping[str, str], lead: str = "",
                  fields: Mapping[str, ui.element | str] | None = None) -> None:
    """Replaces the box's content with `problems`, each a link to its field where `fields` names one
    (an element, or a DOM id), and moves focus to the box so it is read out and seen first."""
    box.clear()
    box.classes(add="seen-error-summary", remove="text-red-800 hidden").props('tabindex="-1"')
    fields = fields or {}
    with box:
        ui.label(TITLE).classes("text-xl font-bold").props('role="heading" aria-level="2"')
        if lead:
            ui.label(lead)
        with ui.element("ul").classes("w-full list-none p-0 m-0 flex flex-col gap-1"):
            for key, message in problems.items():
                with ui.element("li"):
                    target = fields.get(key)
                    if target is None:
                        ui.label(message).classes("font-bold text-red-800")
                    else:
                        ui.link(message, f"#{target if isinstance(target, str) else dom_id(target)}").mark(
                            f"problem-{key}")
    ui.run_javascript(f"document.getElementById('{dom_id(box)}')?.focus()")

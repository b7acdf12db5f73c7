"""The idle lock: after SEEN_IDLE_LOCK_MINUTES without a touch or a key, the screen locks itself.

The browser keeps the time of the last input. When the limit passes it blanks the page at once, so
nothing identifying stays on a phone left on a table, and goes to `/logout?locked=1`, which signs the
worker out; signing in again returns them where they were (a visit's draft is restored from the
database). The check runs on a timer and whenever the tab becomes visible again, because phones
suspend timers in background tabs.

The server keeps its own record of activity (`last_active`, checked by pwa/auth.py on every page
load). Typing on one screen makes no page loads, so the browser reports activity to the server at most
once a minute; otherwise a worker typing a long visit would be signed out on their next tap.
"""

from __future__ import annotations

import time

from nicegui import app, ui

from storage.config import settings

ACTIVITY_EVENT = "seen_activity"
REPORT_EVERY_SECONDS = 60


def _script(limit_seconds: int) -> str:
    return f"""
<script>
(() => {{
  if (window.seenIdleLock) return;
  const limit = {limit_seconds} * 1000;
  let last = Date.now(), reported = Date.now(), locked = false;
  const lock = () => {{
    if (locked) return;
    locked = true;
    document.documentElement.style.visibility = 'hidden';
    const next = encodeURIComponent(location.pathname + location.search);
    location.replace('/logout?locked=1&next=' + next);
  }};
  const check = () => {{ if (Date.now() - last >= limit) lock(); }};
  const touched = () => {{
    check();
    if (locked) return;
    last = Date.now();
    if (last - reported >= {REPORT_EVERY_SECONDS} * 1000 && window.emitEvent) {{
      reported = last;
      window.emitEvent('{ACTIVITY_EVENT}');
    }}
  }};
  for (const type of ['pointerdown', 'keydown', 'input', 'wheel', 'touchstart']) {{
    document.addEventListener(type, touched, {{capture: true, passive: true}});
  }}
  document.addEventListener('visibilitychange', () => {{ if (!document.hidden) check(); }});
  setInterval(check, 5000);
  window.seenIdleLock = {{limit, check, lastInput: () => last}};
}})();
</script>"""


def _still_here() -> None:
    # Only for a signed-in browser: a locked-out one has no worker to keep active.
    if app.storage.user.get("worker_id"):
        app.storage.user["last_active"] = time.time()


def install_idle_lock() -> None:
    """Adds the idle lock to the page being built (called by the frame every screen sits in)."""
    ui.add_head_html(_script(settings().idle_lock_minutes * 60))
    ui.on(ACTIVITY_EVENT, _still_here)

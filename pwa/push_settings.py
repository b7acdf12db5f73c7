"""The "Notifications" section of the settings screen: turn push alerts on or off for this device.

Turning on runs in the browser, inside the tap (browsers ask for permission only from a user's gesture):
ask permission, subscribe through the service worker's pushManager with the server's public key, and
POST the subscription to /api/push/subscribe. Turning off unsubscribes and tells the server. The browser
reports back with the `seen-push` event so the section shows where things stand.
"""

from __future__ import annotations

from nicegui import events, ui

from storage.models import Worker

PUSH_JS = r"""
<script>
window.seenPush = window.seenPush || (function () {
  const PRIVATE_WINDOW = 'this browser window cannot receive them. A private or incognito window cannot; ' +
    'open Seen in an ordinary window, or from your home screen, and turn them on there.';
  function report(state, message) { emitEvent('seen-push', {state: state, message: message || ''}); }
  function keyBytes(b64url) {
    const b64 = (b64url + '='.repeat((4 - b64url.length % 4) % 4)).replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }
  function supported() {
    return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  }
  async function post(path, body) {
    let response;
    try {
      response = await fetch(path, {method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    } catch (e) {
      throw new Error('Seen could not reach the server. Check this device is online, then try again.');
    }
    if (!response.ok) {
      let message = 'The server did not accept it (' + response.status + ').';
      try { message = (await response.json()).error || message; } catch (e) {}
      throw new Error(message);
    }
  }
  async function status() {
    if (!supported()) return report('unsupported');
    if (Notification.permission === 'denied') return report('denied');
    const registration = await navigator.serviceWorker.getRegistration();
    const subscription = registration && await registration.pushManager.getSubscription();
    if (!subscription || Notification.permission !== 'granted') return report('off');
    // The browser may still hold a subscription the server has let go (signed out here, or now another
    // worker's device): it is on only if the server sends this worker's alerts to it.
    try {
      const response = await fetch('/api/push/status', {method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({endpoint: subscription.endpoint})});
      report(response.ok && (await response.json()).subscribed ? 'on' : 'off');
    } catch (e) {
      report('off');
    }
  }
  async function turnOn() {
    if (!supported()) return report('unsupported');
    try {
      const permission = await Notification.requestPermission();
      if (permission !== 'granted') return report('denied');
      report('working'); // registering with the browser's push service can take a while on a weak signal
      const registration = await navigator.serviceWorker.ready;
      const key = (await (await fetch('/api/push/key', {credentials: 'same-origin'})).json()).publicKey;
      let subscription = await registration.pushManager.getSubscription();
      if (!subscription) {
        subscription = await registration.pushManager.subscribe(
          {userVisibleOnly: true, applicationServerKey: keyBytes(key)});
      }
      await post('/api/push/subscribe', subscription.toJSON());
      report('on');
    } catch (e) {
      const reason = String(e && e.message || e);
      // Allowed, yet refused: a private (incognito) window has no push service to register with.
      const privateWindow = Notification.permission === 'granted' && /permission denied/i.test(reason);
      report('failed', privateWindow ? PRIVATE_WINDOW : reason);
    }
  }
  async function turnOff() {
    try {
      const registration = supported() && await navigator.serviceWorker.getRegistration();
      const subscription = registration && await registration.pushManager.getSubscription();
      if (subscription) {
        await post('/api/push/unsubscribe', {endpoint: subscription.endpoint});
        await subscription.unsubscribe();
      }
      report('off');
    } catch (e) {
      // Still subscribed (on this device, the server, or both): the section keeps offering to turn off.
      report('failed-off', String(e && e.message || e));
    }
  }
  return {status: status, turnOn: turnOn, turnOff: turnOff};
})();
</script>
"""

MESSAGES = {
    "on": "Notifications are on for this device. You will hear when a visit or review is coming due.",
    "off": "Notifications are off for this device.",
    "denied": "This browser is blocking notifications from Seen. Allow them in the browser's site settings, "
              "then turn them on here.",
    "unsupported": "This browser cannot receive notifications. On an iPhone, add Seen to the home screen "
                   "first, then open it from there.",
    "working": "Turning notifications on for this device…",
    "failed": "Notifications could not be turned on: ",
    "failed-off": "Notifications could not be turned off: ",
}


def notifications_section(_worker: Worker | None = None) -> None:
    """Builds the section's content (the settings screen gives it its card and heading)."""
    ui.add_head_html(PUSH_JS)
    ui.label("Seen can tell you on this device when a visit or review is due in 3 working days, due "
             "today or overdue. Notifications show the child's initials only, never a name.")
    state = ui.label("Checking whether notifications are on…").props('role="status" aria-live="polite"')
    with ui.row().classes("gap-2"):
        on = ui.button("Turn on notifications", icon="notifications_active").classes("h-12")
        off = ui.button("Turn off notifications", icon="notifications_off").props("outline").classes("h-12")
    # Both run in the browser, inside the tap: permission prompts need the user's own gesture.
    on.on("click", js_handler="() => window.seenPush.turnOn()")
    off.on("click", js_handler="() => window.seenPush.turnOff()")
    off.set_visibility(False)

    def show(event: events.GenericEventArguments) -> None:
        args = event.args if isinstance(event.args, dict) else {}
        current = str(args.get("state", "off"))
        text = MESSAGES.get(current, MESSAGES["off"])
        if current in ("failed", "failed-off"):
            text += str(args.get("message", "")) or "try again."
        state.text = text
        still_on = current in ("on", "failed-off")
        on.set_visibility(not still_on)
        off.set_visibility(still_on)

    ui.on("seen-push", show)
    # After the page has connected: the browser says whether this device is subscribed.
    ui.timer(0.1, lambda: ui.run_javascript("window.seenPush && window.seenPush.status()"), once=True)


def add_to_settings() -> None:
    """Puts the section on the settings screen (replacing its placeholder), if that screen exists."""
    try:
        from pwa.pages.settings import add_section
    except ModuleNotFoundError as e:
        if e.name != "pwa.pages.settings":
            raise
        return
    add_section("notifications", "Notifications", notifications_section, 20)

"""The app's security headers, in real chromium on a real `seen run`: the Content-Security-Policy leaves the
app working with no violation reported, another site cannot frame it, and the session cookie is Secure over
HTTPS (also behind a proxy that says so)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.browser_support import LiveServer, ben_and_child, sign_in, wait_connected

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '')));
"""


def test_the_app_works_under_its_content_security_policy_with_no_violation(page, live_server: LiveServer) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page)
    wait_connected(page)
    _ben, child_id = ben_and_child(live_server)
    page.goto(f"/child/{child_id}")
    wait_connected(page)
    page.get_by_role("button", name="Log a visit").click()  # a button that navigates: NiceGUI's own script
    page.wait_for_url(lambda url: "/visit" in url)
    wait_connected(page)
    page.goto("/settings")
    wait_connected(page)
    page.goto("/")
    page.get_by_role("heading", name="My caseload").wait_for()
    wait_connected(page)
    assert page.evaluate("window.__csp") == []
    assert not [line for line in console if "Content Security Policy" in line or "Refused to" in line], console


@contextmanager
def other_site(html: str) -> Iterator[str]:
    """Another site (another origin: another port) serving one page."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_another_site_cannot_frame_seen_and_the_headers_are_sent(page, live_server: LiveServer) -> None:
    with other_site(f'<iframe src="{live_server.url}/login" width="300" height="300"></iframe>') as attacker:
        page.goto(attacker)
        page.wait_for_timeout(3000)
        [framed] = [f for f in page.frames if f != page.main_frame]
        shown = framed.evaluate("document.body ? document.body.innerText : ''") if framed.url.startswith(
            live_server.url) else ""
    assert "Sign in" not in shown, (framed.url, shown)
    assert framed.url.startswith("chrome-error:")  # chromium refused to show it

    plain = httpx.get(f"{live_server.url}/login", timeout=60)
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]
    assert plain.headers["x-frame-options"] == "DENY"
    assert plain.headers["referrer-policy"] == "same-origin"
    cookie = plain.headers["set-cookie"]
    assert cookie.startswith("session=") and "secure" not in cookie.lower()  # plain http (a demo on loopback)
    assert "strict-transport-security" not in plain.headers
    # Behind a TLS-terminating proxy on the same machine (trusted by default) that says the request was https.
    proxied = httpx.get(f"{live_server.url}/login", headers={"X-Forwarded-Proto": "https"}, timeout=60)
    assert "; Secure" in proxied.headers["set-cookie"] and "httponly" in proxied.headers["set-cookie"].lower()
    assert proxied.headers["strict-transport-security"].startswith("max-age=")

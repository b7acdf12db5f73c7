"""Response headers every page and API answer carries, and the session cookie's Secure flag over HTTPS.

The Content-Security-Policy is the strictest NiceGUI works under: NiceGUI writes its page set-up as inline
scripts and compiles Vue templates in the browser (`new Function`), so scripts need 'unsafe-inline' and
'unsafe-eval'; Quasar sets inline styles. What it does forbid: scripts, styles, fonts and connections from
any other site, plugins, being framed by another site (clickjacking), a <base> or form sending elsewhere.
Checked in real chromium (tests/test_browser_security.py): the app works with no violation reported.

The session cookie is made by NiceGUI's session middleware, which has no per-request Secure setting:
this middleware wraps the whole app (outside it) and adds `Secure` to every cookie of a request made over
HTTPS, which uvicorn reports from the connection or, behind a proxy it trusts (FORWARDED_ALLOW_IPS,
loopback by default), from the proxy's X-Forwarded-Proto.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
]
HTTPS_ONLY = [(b"strict-transport-security", b"max-age=31536000")]


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response, and `Secure` cookies over HTTPS."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if https and name.lower() == b"set-cookie" and b"secure" not in value.lower():
                        value = value + b"; Secure"
                    headers.append((name, value))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in HEADERS + (HTTPS_ONLY if https else []) if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def same_origin(request: Request) -> bool:
    """Whether an API call that changes something comes from Seen's own pages: a request whose Origin (sent
    by browsers on every POST) is another site's is refused. The session cookie is SameSite=Lax and bodies
    must be JSON; this closes the last gap (a cross-site page subscribing its own endpoint to a worker's
    alerts, or sending drafts in their name). An origin is scheme, host and port, compared whole."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.url.netloc}"


def install(app: Any) -> None:
    """Wraps the whole app, outside every middleware (NiceGUI's session middleware is added last, by ui.run,
    so it would otherwise sit outside this one and its cookie pass unseen)."""
    build = app.build_middleware_stack

    def build_with_headers() -> Any:
        return SecurityHeaders(build())

    setattr(app, "build_middleware_stack", build_with_headers)  # noqa: B010 - Starlette calls it at the first request

"""R6: Host-header allowlist (DNS rebinding) and the bearer token, in front of every route.

The dashboard is opened in a browser, which cannot add an Authorization header
to a link: it also takes the token from the ``edgekit_token`` cookie, which
``/?token=...`` or ``/dashboard?token=...`` sets (HttpOnly, SameSite=Strict).
"""

from __future__ import annotations

import hmac
import re
import time

from edgekit.server.errors import envelope
from edgekit.server.settings import Settings
from fastapi import FastAPI, Request
from starlette.responses import Response

OPEN_PATHS = ("/v1/health",)
COOKIE = "edgekit_token"


# RFC 9110 Host = uri-host [":" port]; uri-host is a bracketed IPv6 literal, an IPv4 address or a reg-name.
# The whole header must match: "[::1]evil.example.com" or "[::1].evil.example.com:80" are not [::1].
_HOST_RE = re.compile(r"^(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._~-]+))(?::(?P<port>[0-9]{1,5}))?$")


def parse_host(host_header: str | None) -> str | None:
    """The host part of a Host header (IPv6 without brackets), or None when the header is malformed."""
    m = _HOST_RE.match((host_header or "").strip().lower())
    if not m or (m.group("port") and int(m.group("port")) > 65535):
        return None
    return m.group("ip6") or m.group("name")


def host_allowed(host_header: str | None, allowed: list[str]) -> bool:
    host = parse_host(host_header)
    return host is not None and host in {h.lower().strip("[]") for h in allowed}


def token_ok(request: Request, token: str) -> bool:
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth[:7].lower() == "bearer " else None
    if given is None and _is_dashboard(request.url.path):
        given = request.cookies.get(COOKIE) or request.query_params.get("token")
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _is_dashboard(path: str) -> bool:
    return path == "/" or path == "/dashboard" or path.startswith("/dashboard/")


def install(app: FastAPI, settings: Settings) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next) -> Response:
        t0 = time.perf_counter()
        metrics = request.app.state.edgekit.metrics
        if not host_allowed(request.headers.get("host"), settings.allowed_hosts):
            resp = envelope(403, "host_not_allowed", f"Host header {request.headers.get('host')!r} is not served "
                            "here", {"allowed_hosts": settings.allowed_hosts,
                                     "fix": "use one of allowed_hosts, or add it with --allowed-host"})
        elif settings.token and request.url.path not in OPEN_PATHS and not token_ok(request, settings.token):
            resp = envelope(401, "unauthorized", "missing or wrong bearer token",
                            {"fix": "send 'Authorization: Bearer <token>' (edgekit bench --token / "
                                    "EDGEKIT_SERVER_TOKEN)"}, headers={"WWW-Authenticate": "Bearer"})
        else:
            resp = await call_next(request)
            if request.url.path in ("/", "/dashboard") and settings.token and "token" in request.query_params:
                resp.set_cookie(COOKIE, request.query_params["token"], httponly=True, samesite="strict")
        route = request.scope.get("route")
        metrics.request(request.method, getattr(route, "path", "unmatched"), resp.status_code,
                        time.perf_counter() - t0)
        return resp

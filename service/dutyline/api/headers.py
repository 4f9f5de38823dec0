"""Security headers on every response, errors and unknown paths included (an app-level `before_send` hook, so
that answers Litestar makes before any route is found get them too).

The API answers JSON, which never needs to run, frame or load anything: its policy allows nothing. The
interactive API reference (`/schema`, Scalar) loads its script and style from this origin (`api/reference.py`),
and no script inline; Scalar sets styles on its elements as it draws them. Responses that set their own policy (the console) keep it. Admin answers are not stored
by caches (they carry sessions, CSRF tokens and, once, token secrets).
"""

from __future__ import annotations

from litestar.types import Message, Scope

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_API = [(b"content-security-policy", API_POLICY.encode()), *_COMMON]
_DOCS = [(b"content-security-policy", DOCS_POLICY.encode()), *_COMMON]
_NO_STORE = (b"cache-control", b"no-store")


async def security_headers(message: Message, scope: Scope) -> None:
    """Add the headers a response does not set itself."""
    if message["type"] != "http.response.start":
        return
    path: str = scope.get("path", "")
    wanted = _DOCS if path.startswith("/schema") else _API
    if path.startswith("/admin"):
        wanted = [*wanted, _NO_STORE]
    headers = list(message.get("headers") or ())
    present = {name.lower() for name, _ in headers}
    headers.extend(header for header in wanted if header[0] not in present)
    message["headers"] = headers

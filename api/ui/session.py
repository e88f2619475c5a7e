"""The UI's session and its CSRF guard.

The session cookie carries the operator's API key (checked against the store on every request,
so a revoked key ends the session at once) and a random nonce. It is HttpOnly (no script reads
it), SameSite=Strict, scoped to /ui, and Secure when the UI is served over https.

Every action is a POST carrying a CSRF token: an HMAC of the nonce keyed by the session's own
key, so only a page the server rendered for this session knows it, and every API process
computes the same one without a shared secret. The Origin of a POST must be the UI's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

COOKIE = "fleetpipe_ui"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# A working day: after that the operator pastes the key again.
MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class UiSession:
    key: str
    nonce: str

    @property
    def csrf_token(self) -> str:
        return hmac.new(self.key.encode(), b"fleetpipe-ui-csrf:" + self.nonce.encode(),
                        hashlib.sha256).hexdigest()

    def accepts(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token, token or "")


def new_session(key: str) -> UiSession:
    return UiSession(key=key, nonce=secrets.token_urlsafe(16))


def _encode(session: UiSession) -> str:
    key = base64.urlsafe_b64encode(session.key.encode()).decode().rstrip("=")
    return f"{session.nonce}.{key}"


def read_session(request: Request) -> UiSession | None:
    """The request's session as its cookie says (the key is not checked here)."""
    raw = request.cookies.get(COOKIE, "")
    nonce, _, encoded = raw.partition(".")
    if not nonce or not encoded:
        return None
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return UiSession(key=key, nonce=nonce) if key else None


def served_over_https(request: Request) -> bool:
    base = request.app.state.settings.public_base_url
    return request.url.scheme == "https" or base.startswith("https://")


def set_session_cookie(response: Response, request: Request, session: UiSession) -> None:
    response.set_cookie(COOKIE, _encode(session), max_age=MAX_AGE_SECONDS, path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=served_over_https(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=served_over_https(request))


def own_origin(request: Request) -> str:
    base = request.app.state.settings.public_base_url
    if base:
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def origin_allowed(request: Request) -> bool:
    """A POST from another site's page is refused. A browser sends Origin with every POST; a
    request without one (a script, not a browser) still needs the CSRF token."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True
        scheme, _, rest = referer.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
    return origin == own_origin(request)

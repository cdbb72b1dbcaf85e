"""Sessions, CSRF tokens and response headers of the web app.

Sessions are Starlette's signed cookie (itsdangerous, HMAC-SHA1 over the JSON payload with the app's secret):
HttpOnly, SameSite=Strict, Secure when served over HTTPS (`--https-only`). The cookie holds the user name, a
CSRF token and when the password was set (a password change signs every other session out); never a role:
roles are read from the accounts store on every request, so taking someone off a review takes effect at once.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# our own script and style only; no inline script, no third-party origin, no framing
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use, also for the anonymous sign-in form)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request without the session's CSRF token in its form or header."""
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        raise HTTPException(status_code=403, detail="This form has expired or did not come from this site "
                                                    "(missing or wrong CSRF token): reload the page and try again.")


def new_secret() -> str:
    return secrets.token_urlsafe(48)

"""People who use the web app: names, passwords, roles and sign-in throttling (pure: no database).

Passwords are hashed with argon2id through argon2-cffi (the reference implementation's bindings, the
algorithm OWASP recommends first); a hash is a self-describing PHC string, so parameters can be raised later
and old hashes re-hashed at the next sign-in (`needs_rehash`).

Roles are per review: a *lead* resolves screening conflicts, accepts extraction and manages people; a
*reviewer* screens and extracts. Someone who is on no role of a review does not see it at all.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES = ("lead", "reviewer")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
_hasher = PasswordHasher()  # argon2id, argon2-cffi's defaults (RFC 9106 low-memory profile)

# what each role may do on its review; everything else is refused with 403
PERMISSIONS = {
    "reviewer": frozenset({"view", "screen", "extract"}),
    "lead": frozenset({"view", "screen", "extract", "resolve", "accept", "manage"}),
}


class AccountError(ValueError):
    """A user name, password or role that cannot be used; the message says which and how to fix it."""


def check_username(username: str) -> str:
    name = (username or "").strip()
    if not _USERNAME_RE.match(name):
        raise AccountError(
            f"user name {username!r}: use 2-40 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. 'ana.silva')"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"password too long: at most {MAX_PASSWORD_LENGTH} characters")
    if username and password.strip().lower() == username.lower():
        raise AccountError("password must not be the user name")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches; False for a wrong password or an unreadable hash (never raises)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


# a hash of a random password, verified against when the user name is unknown, so that an unknown name
# costs as long as a wrong password (no user-name discovery by timing)
DUMMY_HASH = _hasher.hash("livingmeta-no-such-user-" + str(time.time_ns()))


def allowed(role: str | None, action: str) -> bool:
    return role is not None and action in PERMISSIONS.get(role, frozenset())


@dataclass
class LoginThrottle:
    """Refuse sign-in after too many failures for one user name or one client address within a window.

    `max_failures` failures within `window` seconds lock the key for `lockout` seconds; a success clears the
    user name's failures (not the address's). Thread-safe; in memory (a restart forgets, which only ever
    helps a legitimate user).
    """

    max_failures: int = 5
    window: float = 900.0
    lockout: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque] = field(default_factory=dict)
    _locked_until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, *keys: str) -> float:
        """Seconds until these keys may try again (0: allowed now)."""
        now = self.clock()
        with self._lock:
            return max([self._locked_until.get(k, 0.0) - now for k in keys] + [0.0])

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                q = self._failures.setdefault(k, deque())
                q.append(now)
                while q and q[0] < now - self.window:
                    q.popleft()
                if len(q) >= self.max_failures:
                    self._locked_until[k] = now + self.lockout
                    q.clear()

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)

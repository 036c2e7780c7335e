"""Signing in to the workspace: sessions, CSRF tokens and the throttle on failed sign-ins.

- **Session**: a JWT (the same signer and keys as bearer tokens, audience
  ``leadledger-workspace``) in the ``ll_session`` cookie: HttpOnly, SameSite=Lax, Secure
  when the request came over HTTPS, expiring after ``session_ttl_hours``. It resolves to
  the same :class:`Principal` a bearer token gives, so every page applies the API's rules
  (:mod:`read_api.access`). Signing out revokes the session in this process (and clears
  the cookie).
- **CSRF**: every state-changing form carries ``csrf_token``, an HMAC under the token
  secret of a random value kept in the ``ll_csrf`` cookie (HttpOnly, SameSite=Lax); a post
  without it, or with another, is refused (403 page).
- **Throttle**: failed sign-ins are counted per username and per client address over
  ``signin_window_minutes``; after ``signin_slow_after`` failures every further attempt is
  answered only after ``signin_delay_seconds``, after ``signin_max_failures`` for one user
  (``signin_max_failures_per_address`` for one address) attempts are refused with 429 until
  the window has passed. Counts live in the server process (each process counts its own).
  The answer to a failed sign-in never says whether the user exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from aggregates.users import Principal
from leadledger.tokens import TokenRejected
from leadledger.wiring import Platform

SESSION_COOKIE = "ll_session"
CSRF_COOKIE = "ll_csrf"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No valid session: the page sends the browser to the sign-in form."""


class CsrfRejected(Exception):
    """A state-changing form without its CSRF token, or with another one (403)."""


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


# --- sessions ------------------------------------------------------------------------------


@dataclass
class Sessions:
    """Issues and checks session cookies; remembers revoked sessions until they expire."""

    platform: Platform
    _revoked: dict[str, datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ttl(self) -> timedelta:
        return timedelta(hours=self.platform.settings.session_ttl_hours)

    def open(self, response: Response, request: Request, principal: Principal) -> None:
        token = self.platform.signer.issue_session(
            principal,
            now=self.platform.clock(),
            ttl=self.ttl,
            session_id=secrets.token_urlsafe(16),
        )
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(self.ttl.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=secure(request),
            path="/",
        )

    def principal(self, request: Request) -> Principal | None:
        """The session's principal, or None (no cookie, or a bad, expired or revoked one)."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            principal, sid = self.platform.signer.verify_session(raw, now=self.platform.clock())
        except TokenRejected:
            return None
        with self._lock:
            if sid in self._revoked:
                return None
        return principal

    def close(self, response: Response, request: Request) -> None:
        raw = request.cookies.get(SESSION_COOKIE)
        now = self.platform.clock()
        if raw:
            try:
                _, sid = self.platform.signer.verify_session(raw, now=now)
            except TokenRejected:
                sid = ""
            if sid:
                with self._lock:
                    self._revoked = {s: t for s, t in self._revoked.items() if t > now}
                    self._revoked[sid] = now + self.ttl
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure(request)
        )


# --- CSRF ----------------------------------------------------------------------------------


def _csrf_mac(platform: Platform, nonce: str) -> str:
    return hmac.new(
        platform.signer.secret, b"leadledger-csrf:" + nonce.encode(), hashlib.sha256
    ).hexdigest()


def csrf_nonce(request: Request) -> tuple[str, bool]:
    """The request's CSRF cookie value, and whether it is new (to be set on the answer)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(nonce) <= 100:
        return nonce, False
    return new_csrf_nonce(), True


def new_csrf_nonce() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(platform: Platform, nonce: str) -> str:
    return _csrf_mac(platform, nonce)


def set_csrf_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=secure(request), path="/"
    )


def check_csrf(platform: Platform, request: Request, sent: object) -> None:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not nonce or not isinstance(sent, str) or len(sent) > 200:
        raise CsrfRejected
    if not hmac.compare_digest(sent.encode(), _csrf_mac(platform, nonce).encode()):
        raise CsrfRejected


# --- the throttle on failed sign-ins -------------------------------------------------------


Verdict = Literal["go", "slow", "refuse"]


@dataclass
class Throttle:
    """Failed sign-ins per username and per address within the window (in memory)."""

    platform: Platform
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: datetime) -> int:
        window = timedelta(minutes=self.platform.settings.signin_window_minutes)
        seen = self._failures.get(key)
        if not seen:
            return 0
        while seen and seen[0] <= now - window:
            seen.popleft()
        if not seen:
            del self._failures[key]
            return 0
        return len(seen)

    def verdict(self, username: str, address: str) -> Verdict:
        s = self.platform.settings
        now = self.platform.clock()
        with self._lock:
            by_user = self._recent(f"user:{username}", now)
            by_address = self._recent(f"address:{address}", now)
        if by_user >= s.signin_max_failures or by_address >= s.signin_max_failures_per_address:
            return "refuse"
        if max(by_user, by_address) >= s.signin_slow_after:
            return "slow"
        return "go"

    def failed(self, username: str, address: str) -> None:
        now = self.platform.clock()
        with self._lock:
            for key in (f"user:{username}", f"address:{address}"):
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > 100_000:  # bounded: forget the quietest keys
                for key in list(self._failures)[:10_000]:
                    del self._failures[key]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)

    def retry_after(self) -> int:
        return int(self.platform.settings.signin_window_minutes * 60)

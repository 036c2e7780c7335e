"""Bearer tokens and workspace sessions: JWTs (HS256, signed and checked by PyJWT)
carrying a user's role, department and region.

Tokens are signed with the current secret from settings (``LEADLEDGER_AUTH_SECRET``) and
expire; the server trusts their claims for the token's lifetime. Every token names the
key that signed it in its header (``kid``, derived from a hash of the secret), so the
secret can be rotated without signing everyone out at once: move the old secret to
``LEADLEDGER_AUTH_OLD_SECRETS`` and its tokens stay accepted until they expire (a token
without a ``kid`` is checked against the current secret only). Standard JWT, so a
frontend can read its own claims with any JWT library.

A workspace session is the same token with an audience (``aud``) of its own: a session
cookie is no bearer token, and a bearer token opens no session.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from aggregates.errors import InvalidValue
from aggregates.users import Principal, check_claims, department, role, username
from leadledger.settings import Settings

ISSUER = "leadledger"
MIN_SECRET = 32
ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 4096
"""Tokens whose signature and claims were checked, kept by the signer (a client sends the
same token with every request): a repeat costs a dictionary look-up and the expiry check."""
SESSION_AUDIENCE = "leadledger-workspace"


class TokenRejected(Exception):
    """The bearer token is missing, malformed, wrongly signed or expired (HTTP 401)."""


def key_id(secret: bytes) -> str:
    """The ``kid`` of a secret: 16 hex digits of a hash of it (the secret cannot be
    recovered from it, and two secrets practically never share one)."""
    return hashlib.sha256(b"leadledger-kid:" + secret).hexdigest()[:16]


def _check_length(secret: bytes) -> None:
    if len(secret) < MIN_SECRET:
        raise ValueError(f"the token secret must be at least {MIN_SECRET} bytes")


@dataclass(frozen=True)
class Signer:
    """Signs with ``secret``; checks with it and with each of ``older`` (rotation)."""

    secret: bytes
    older: tuple[bytes, ...] = ()
    _keys: dict[str, bytes] = field(init=False, repr=False, compare=False)
    _verified: OrderedDict[tuple[str, str | None], tuple[Principal, dict[str, Any]]] = field(
        init=False, repr=False, compare=False
    )
    _verified_lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_length(self.secret)
        for old in self.older:
            _check_length(old)
        keys = {key_id(old): old for old in self.older}
        keys[key_id(self.secret)] = self.secret
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_verified", OrderedDict())
        object.__setattr__(self, "_verified_lock", threading.Lock())

    @property
    def kid(self) -> str:
        """The key id new tokens carry."""
        return key_id(self.secret)

    def issue(
        self,
        principal: Principal,
        *,
        now: datetime,
        ttl: timedelta,
        audience: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": principal.user,
            "role": principal.role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        if principal.department:
            claims["dept"] = principal.department
        if principal.region:
            claims["region"] = principal.region
        if audience:
            claims["aud"] = audience
        claims.update(extra or {})
        return jwt.encode(
            claims, self.secret, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"}
        )

    def issue_session(
        self, principal: Principal, *, now: datetime, ttl: timedelta, session_id: str
    ) -> str:
        """A workspace session (audience ``leadledger-workspace``) with its own id."""
        return self.issue(
            principal, now=now, ttl=ttl, audience=SESSION_AUDIENCE, extra={"sid": session_id}
        )

    def verify(self, token: str, *, now: datetime) -> Principal:
        """The bearer token's principal, or TokenRejected saying what is wrong."""
        principal, _ = self._verify(token, now=now, audience=None)
        return principal

    def verify_session(self, token: str, *, now: datetime) -> tuple[Principal, str]:
        """A session's principal and session id, or TokenRejected."""
        principal, claims = self._verify(token, now=now, audience=SESSION_AUDIENCE)
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid:
            raise TokenRejected("the session has no id")
        return principal, sid

    def _verify(
        self, token: str, *, now: datetime, audience: str | None
    ) -> tuple[Principal, dict[str, Any]]:
        """The token's principal and claims: its signature and claims are checked once
        (the result kept, see ``VERIFIED_CACHE_SIZE``), its expiry at every call."""
        what = "session" if audience else "bearer token"
        key = (token, audience)
        with self._verified_lock:
            found = self._verified.get(key)
        if found is None:
            found = self._check(token, audience, what)
            with self._verified_lock:
                self._verified[key] = found
                while len(self._verified) > VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
        exp = found[1].get("exp")
        if not isinstance(exp, int) or exp <= now.timestamp():
            raise TokenRejected(f"the {what} has expired")
        return found

    def _check(
        self, token: str, audience: str | None, what: str
    ) -> tuple[Principal, dict[str, Any]]:
        """Signature, issuer, audience and claims (not the expiry), or TokenRejected."""
        if token.count(".") != 2:
            raise TokenRejected(f"the {what} is not a signed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenRejected(f"the {what} is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejected(f"the {what} must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if kid is None:
            key = self.secret
        elif isinstance(kid, str) and kid in self._keys:
            key = self._keys[kid]
        else:
            raise TokenRejected(f"the {what}'s signature is by an unknown key (kid)")
        try:
            # expiry is checked below against the platform's clock, not the wall clock
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss"],
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenRejected(f"the {what}'s signature does not match") from None
        except (jwt.InvalidIssuerError, jwt.MissingRequiredClaimError):
            raise TokenRejected(f"the {what} was not issued by LeadLedger") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(f"the {what} is not meant for this use") from None
        except jwt.InvalidTokenError:
            raise TokenRejected(f"the {what} is malformed") from None
        try:
            principal = Principal(
                user=username(claims.get("sub"), "sub"),
                role=role(claims.get("role")),
                department=department(claims.get("dept")),
                region=claims.get("region") if isinstance(claims.get("region"), str) else None,
            )
            check_claims(principal.role, principal.department)
        except InvalidValue as error:
            raise TokenRejected(f"the {what}'s claims are invalid: {error.message}") from None
        return principal, claims


def secret_from(settings: Settings) -> bytes:
    """The configured secret; on the embedded store without one, a generated secret kept
    in ``auth.secret`` beside the events (so tokens survive restarts)."""
    configured = settings.auth_secret.get_secret_value()
    if configured:
        if len(configured.encode()) < MIN_SECRET:
            raise ValueError(
                f"LEADLEDGER_AUTH_SECRET must be at least {MIN_SECRET} characters long"
            )
        return configured.encode()
    url = settings.event_store_url
    if not url.startswith("sqlite:///"):
        raise ValueError(
            "LEADLEDGER_AUTH_SECRET must be set when the event store is PostgreSQL "
            "(every server and `leadledger token` must share it)"
        )
    path = Path(url.removeprefix("sqlite:///")).parent / "auth.secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="ascii") as file:  # first start: create it once
            path.chmod(0o600)
            file.write(secrets.token_urlsafe(48))
    except FileExistsError:
        pass
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_SECRET:
        raise ValueError(f"{path} holds no usable secret: delete it to have a new one made")
    return secret.encode()


def old_secrets_from(settings: Settings) -> tuple[bytes, ...]:
    """The retired secrets still accepted (``LEADLEDGER_AUTH_OLD_SECRETS``)."""
    raw: Iterable[str] = settings.auth_old_secrets.get_secret_value().split(",")
    olds = tuple(s.strip().encode() for s in raw if s.strip())
    for old in olds:
        if len(old) < MIN_SECRET:
            raise ValueError(
                f"each of LEADLEDGER_AUTH_OLD_SECRETS must be at least {MIN_SECRET} characters"
            )
    return olds


def signer_from(settings: Settings) -> Signer:
    """The signer of the configured current secret, accepting the old ones too."""
    return Signer(secret_from(settings), old_secrets_from(settings))

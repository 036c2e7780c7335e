"""Bearer tokens: compact JWS (HS256) carrying a user's role, department and region.

Tokens are signed with the secret from settings (``LEADLEDGER_AUTH_SECRET``) and expire;
the server trusts their claims for the token's lifetime. Standard JWT, so a frontend can
read its own claims with any JWT library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from aggregates.errors import InvalidValue
from aggregates.users import Principal, check_claims, department, role, username
from leadledger.settings import Settings

ISSUER = "leadledger"
MIN_SECRET = 32
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")


class TokenRejected(Exception):
    """The bearer token is missing, malformed, wrongly signed or expired (HTTP 401)."""


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass(frozen=True)
class Signer:
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET:
            raise ValueError(f"the token secret must be at least {MIN_SECRET} bytes")

    def _signature(self, signing_input: bytes) -> bytes:
        return hmac.new(self.secret, signing_input, hashlib.sha256).digest()

    def issue(self, principal: Principal, *, now: datetime, ttl: timedelta) -> str:
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
        signing_input = _HEADER + b"." + _b64(orjson.dumps(claims))
        return (signing_input + b"." + _b64(self._signature(signing_input))).decode()

    def verify(self, token: str, *, now: datetime) -> Principal:
        """The token's principal, or TokenRejected saying what is wrong."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejected("the bearer token is not a signed token")
        try:
            signature = _unb64(parts[2])
            header = orjson.loads(_unb64(parts[0]))
        except (ValueError, orjson.JSONDecodeError):
            raise TokenRejected("the bearer token is malformed") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise TokenRejected("the bearer token must be signed with HS256")
        expected = self._signature(f"{parts[0]}.{parts[1]}".encode())
        if not hmac.compare_digest(signature, expected):
            raise TokenRejected("the bearer token's signature does not match")
        try:
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, orjson.JSONDecodeError):
            raise TokenRejected("the bearer token is malformed") from None
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            raise TokenRejected("the bearer token was not issued by LeadLedger")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= now.timestamp():
            raise TokenRejected("the bearer token has expired")
        try:
            principal = Principal(
                user=username(claims.get("sub"), "sub"),
                role=role(claims.get("role")),
                department=department(claims.get("dept")),
                region=claims.get("region") if isinstance(claims.get("region"), str) else None,
            )
            check_claims(principal.role, principal.department)
        except InvalidValue as error:
            raise TokenRejected(f"the bearer token's claims are invalid: {error.message}") from None
        return principal


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

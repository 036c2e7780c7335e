"""Bearer tokens on PyJWT: key ids, rotation, tampering, expiry, sessions apart."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from aggregates.users import Principal, Role
from leadledger import tokens as tokens_module
from leadledger.settings import Settings
from leadledger.tokens import (
    SESSION_AUDIENCE,
    Signer,
    TokenRejected,
    key_id,
    old_secrets_from,
    signer_from,
)
from read_api.app import create_app
from tests.conftest import FakeClock, PlatformFactory

OLD = "the-old-secret-of-at-least-32-characters"
NEW = "the-new-secret-of-at-least-32-characters"
MIA = Principal("mia.manager", Role.MANAGER)


def _me(api: TestClient, raw: str) -> int:
    status: int = api.get("/me", headers={"Authorization": f"Bearer {raw}"}).status_code
    return status


def test_a_token_names_its_key_and_a_rotated_key_is_still_accepted(
    make_platform: PlatformFactory, clock: FakeClock
) -> None:
    before = Signer(OLD.encode()).issue(MIA, now=clock.now, ttl=timedelta(hours=1))
    assert jwt.get_unverified_header(before)["kid"] == key_id(OLD.encode())
    platform = make_platform(auth_secret=NEW, auth_old_secrets=f" {OLD} ,")
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        assert _me(api, before) == 200  # signed with the old key: accepted until it expires
        after = platform.signer.issue(MIA, now=clock.now, ttl=timedelta(hours=1))
        assert jwt.get_unverified_header(after)["kid"] == key_id(NEW.encode())
        assert _me(api, after) == 200
        clock.advance(hours=1)
        assert _me(api, before) == 401  # the old key's token expires like any other


def test_an_unknown_kid_tampering_and_expiry_are_401(
    make_platform: PlatformFactory, clock: FakeClock
) -> None:
    platform = make_platform(auth_secret=NEW)
    old = Signer(OLD.encode()).issue(MIA, now=clock.now, ttl=timedelta(hours=1))
    good = platform.signer.issue(MIA, now=clock.now, ttl=timedelta(hours=1))
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    promoted = base64.urlsafe_b64encode(json.dumps(claims | {"role": "top"}).encode())
    tampered = f"{header}.{promoted.decode().rstrip('=')}.{signature}"
    # a known kid over another key's signature
    foreign_kid = jwt.encode(claims, OLD, algorithm="HS256", headers={"kid": key_id(NEW.encode())})
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        for raw, why in (
            (old, "unknown key"),  # the old secret is no longer configured
            (tampered, "signature"),
            (foreign_kid, "signature"),
        ):
            response = api.get("/me", headers={"Authorization": f"Bearer {raw}"})
            assert response.status_code == 401, raw
            assert why in response.json()["detail"]
        assert _me(api, good) == 200
        clock.advance(hours=1)
        response = api.get("/me", headers={"Authorization": f"Bearer {good}"})
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]


def test_a_session_is_no_bearer_token_and_a_bearer_token_no_session(clock: FakeClock) -> None:
    signer = Signer(NEW.encode())
    session = signer.issue_session(MIA, now=clock.now, ttl=timedelta(hours=1), session_id="s1")
    bearer = signer.issue(MIA, now=clock.now, ttl=timedelta(hours=1))
    assert signer.verify_session(session, now=clock.now) == (MIA, "s1")
    claims = jwt.decode(
        session,
        NEW,
        algorithms=["HS256"],
        audience=SESSION_AUDIENCE,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sid"] == "s1"
    with pytest.raises(TokenRejected, match="not meant"):
        signer.verify(session, now=clock.now)
    with pytest.raises(TokenRejected):
        signer.verify_session(bearer, now=clock.now)


def test_old_secrets_are_read_from_settings_and_must_be_long_enough() -> None:
    settings = Settings(auth_secret=NEW, auth_old_secrets=f"{OLD},")  # type: ignore[arg-type]
    assert old_secrets_from(settings) == (OLD.encode(),)
    assert signer_from(settings).older == (OLD.encode(),)
    with pytest.raises(ValueError, match="at least 32"):
        old_secrets_from(Settings(auth_old_secrets="short"))  # type: ignore[arg-type]


def test_a_verified_token_is_checked_once_and_its_expiry_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signer keeps what it verified: a repeat of a token decodes nothing, yet the
    token still expires on time, a session stays no bearer token, a token it never
    verified (tampered, or by another key) is checked in full, and the kept set is bounded."""
    decoded: list[str] = []
    original = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return original(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    signer = Signer(NEW.encode())
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    raw = signer.issue(MIA, now=now, ttl=timedelta(hours=1))
    assert signer.verify(raw, now=now) == MIA
    assert signer.verify(raw, now=now + timedelta(minutes=59)) == MIA
    assert decoded == [raw]
    with pytest.raises(TokenRejected, match="expired"):
        signer.verify(raw, now=now + timedelta(hours=1))
    with pytest.raises(TokenRejected, match="session"):
        signer.verify_session(raw, now=now)
    header, payload, signature = raw.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(TokenRejected):
        signer.verify(tampered, now=now)
    with pytest.raises(TokenRejected, match="unknown key"):
        Signer(OLD.encode()).verify(raw, now=now)  # another signer keeps nothing of ours
    monkeypatch.setattr(tokens_module, "VERIFIED_CACHE_SIZE", 3)
    for minutes in range(10):
        other = signer.issue(MIA, now=now + timedelta(minutes=minutes), ttl=timedelta(hours=2))
        signer.verify(other, now=now + timedelta(minutes=minutes))
    assert len(signer._verified) == 3

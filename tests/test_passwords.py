"""Passwords: argon2id hashes in a credentials table beside the key store, never an event."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from event_store.credentials import MIN_PASSWORD, open_credentials
from read_api.app import create_app
from tests.conftest import POSTGRES_URL, TEST_AUTH_SECRET, PlatformFactory, bearer

ADMIN = bearer("adam.admin", "admin")
MIA = bearer("mia.manager", "manager")


def _register(api: TestClient, username: str, role: str = "manager") -> None:
    body = {"username": username, "name": username.title(), "role": role}
    if role in ("head", "department"):
        body["department"] = "sales"
    assert api.post("/users", json=body, headers=ADMIN).status_code == 201


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_passwords_are_argon2id_hashes_beside_the_key_store_and_never_events(
    backend: str, make_platform: PlatformFactory, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_schema_url") if backend == "postgres" else None
    platform = make_platform(url)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        _register(api, "mia.manager")
        before = platform.store.last_position()
        secret = "correct horse battery staple"
        response = api.put("/users/mia.manager/password", json={"password": secret}, headers=ADMIN)
        assert response.status_code == 204, response.text
        assert platform.store.last_position() == before  # no event
        stored = platform.credentials.store.get("mia.manager")
        assert stored is not None
        assert stored.startswith("$argon2id$")
        assert secret not in stored
        assert platform.credentials.check("mia.manager", secret)
        assert not platform.credentials.check("mia.manager", "wrong password")
        assert not platform.credentials.check("nobody.here", secret)
    if backend == "postgres":
        schema = url.rsplit("schema=", 1)[1] if url else ""
        with psycopg.connect(POSTGRES_URL) as conn:
            row = conn.execute(
                f'SELECT password_hash FROM "{schema}".leadledger_credentials'
                " WHERE username = 'mia.manager'"
            ).fetchone()
        assert row is not None
        assert row[0].startswith("$argon2id$")


def test_the_admin_endpoint_names_the_field_and_the_rule(make_platform: PlatformFactory) -> None:
    platform = make_platform()
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        _register(api, "mia.manager")
        short = api.put("/users/mia.manager/password", json={"password": "x"}, headers=ADMIN)
        assert short.status_code == 422
        assert short.json()["field"] == "password"
        long = api.put("/users/mia.manager/password", json={"password": "x" * 257}, headers=ADMIN)
        assert long.status_code == 422
        blank = api.put(
            "/users/mia.manager/password", json={"password": " " * MIN_PASSWORD}, headers=ADMIN
        )
        assert blank.status_code == 422
        assert blank.json()["field"] == "password"
        unknown = api.put(
            "/users/nobody.here/password", json={"password": "a-good-password"}, headers=ADMIN
        )
        assert unknown.status_code == 404
        # a manager may not set anyone's password through the admin endpoint
        assert (
            api.put(
                "/users/mia.manager/password", json={"password": "a-good-password"}, headers=MIA
            ).status_code
            == 403
        )


def test_a_user_changes_their_own_password_with_the_old_one(
    make_platform: PlatformFactory,
) -> None:
    platform = make_platform()
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        _register(api, "mia.manager")
        platform.credentials.set_password("mia.manager", "first-password", set_by="test")
        wrong = api.put(
            "/me/password",
            json={"old_password": "not-the-password", "new_password": "second-password"},
            headers=MIA,
        )
        assert wrong.status_code == 422
        assert wrong.json()["field"] == "old_password"
        short = api.put(
            "/me/password",
            json={"old_password": "first-password", "new_password": "short"},
            headers=MIA,
        )
        assert short.status_code == 422
        assert short.json()["field"] == "new_password"
        ok = api.put(
            "/me/password",
            json={"old_password": "first-password", "new_password": "second-password"},
            headers=MIA,
        )
        assert ok.status_code == 204
        assert platform.credentials.check("mia.manager", "second-password")
        assert not platform.credentials.check("mia.manager", "first-password")


def test_the_cli_sets_a_password_from_stdin(
    make_platform: PlatformFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from leadledger import cli

    events = f"sqlite:///{tmp_path}/cli-events.sqlite"
    platform = make_platform(events)
    with TestClient(create_app(platform, close_on_exit=False)) as api:
        _register(api, "mia.manager")
    monkeypatch.setenv("LEADLEDGER_EVENT_STORE_URL", events)
    monkeypatch.setenv("LEADLEDGER_AUTH_SECRET", TEST_AUTH_SECRET)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-password-from-stdin\n"))
    assert cli.main(["user", "set-password", "mia.manager", "--password-stdin"]) == 0
    assert "is set" in capsys.readouterr().out
    credentials = open_credentials("", events)
    try:
        assert credentials.check("mia.manager", "a-password-from-stdin")
    finally:
        credentials.close()
    assert (tmp_path / "credentials.sqlite").exists()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["user", "set-password", "mia.manager", "--password-stdin"]) == 2
    assert "at least" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a-password-from-stdin\n"))
    assert cli.main(["user", "set-password", "nobody.here", "--password-stdin"]) == 2
    assert "not in the user directory" in capsys.readouterr().err


def test_serve_demo_sets_and_prints_every_demo_users_password(
    make_platform: PlatformFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from leadledger import cli
    from leadledger.demo import DEMO_USERS

    platform = make_platform()
    platform.credentials.set_password("adam.admin", "changed-by-adam", set_by="adam.admin")
    cli._print_demo_tokens(platform)
    out = capsys.readouterr().out
    assert "Workspace sign-in" in out
    for username, *_ in DEMO_USERS:
        assert f"{username:<18} demo-{username}" in out
    assert platform.credentials.check("anna.petrova", "demo-anna.petrova")
    assert platform.credentials.check("adam.admin", "changed-by-adam")  # a changed one is kept

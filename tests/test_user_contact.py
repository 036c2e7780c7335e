"""The directory keeps each user's city and work e-mail address (where alerts are sent)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregates import users
from aggregates.errors import InvalidValue
from tests.conftest import bearer

ADMIN = bearer("adam.admin", "admin")


def register(client: TestClient, **fields: Any) -> Any:
    body = {"username": "mia.manager", "name": "Mia Manager", "role": "manager"} | fields
    return client.post("/users", json=body, headers=ADMIN)


def test_city_and_email_are_kept_normalised_and_changeable(client: TestClient) -> None:
    created = register(client, region="Volga", city="Kazan", email="  Mia.Manager@Example.COM ")
    assert created.status_code == 201, created.text
    user = client.get("/users/mia.manager", headers=ADMIN).json()
    assert (user["region"], user["city"], user["email"]) == (
        "Volga",
        "Kazan",
        "mia.manager@example.com",
    )
    changed = client.post(
        "/users/mia.manager", json={"email": "mia@example.org", "city": "Samara"}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    listed = client.get(
        "/users",
        params={"role": "manager", "min_position": changed.json()["position"]},
        headers=ADMIN,
    ).json()["items"]
    row = next(u for u in listed if u["username"] == "mia.manager")
    assert (row["city"], row["email"]) == ("Samara", "mia@example.org")
    cleared = client.post("/users/mia.manager", json={"email": None}, headers=ADMIN)
    assert cleared.status_code == 200, cleared.text
    assert client.get("/users/mia.manager", headers=ADMIN).json()["email"] is None


@pytest.mark.parametrize("address", ["mia", "mia@", "@example.com", "mia@example", "a b@c.d"])
def test_a_malformed_email_is_refused_naming_the_field(client: TestClient, address: str) -> None:
    answer = register(client, email=address)
    assert answer.status_code in (400, 422), answer.text
    assert "email" in answer.text
    assert client.get("/users/mia.manager", headers=ADMIN).status_code == 404


def test_users_registered_before_version_2_read_without_city_or_email() -> None:
    stored = {"username": "old", "name": "Old", "role": "manager", "department": None}
    assert users.upcast_user_registered_v1(stored) == stored | {"city": None, "email": None}


def test_email_rule() -> None:
    assert users.email(" A@B.example ") == "a@b.example"
    assert users.email("") is None
    with pytest.raises(InvalidValue):
        users.email(42)

"""Who am I, and the user directory (administrators keep it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from aggregates import users
from aggregates.errors import InvalidValue
from commands.context import StreamNotFound
from commands.users import (
    change_user,
    load_user,
    register_user,
    set_assistant_managers,
    set_cost_rate,
)
from event_store.credentials import MAX_PASSWORD, MIN_PASSWORD, check_password_shape
from leadledger.wiring import Platform
from queries import users as user_queries
from read_api.access import CurrentUser
from read_api.deps import CommandHeadersDep, PlatformDep, ReadCursor, mark_accepted
from schemas.leads import Strict
from schemas.users import (
    AssistantManagersRequest,
    ChangeUserRequest,
    CostRateRequest,
    Me,
    RegisterUserRequest,
    UserAccepted,
    UserPage,
    UserView,
)

router = APIRouter(tags=["users"])
Headers = CommandHeadersDep


@router.get("/me", response_model=Me)
def me(principal: CurrentUser) -> dict[str, Any]:
    """The user the bearer token names, with the role and department it carries."""
    return {
        "user": principal.user,
        "role": principal.role.value,
        "department": principal.department,
        "region": principal.region,
    }


@router.post("/users", status_code=201, response_model=UserAccepted)
def register(
    body: RegisterUserRequest, headers: Headers, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """Register a user (administrators). Tokens for them come from `leadledger token`."""
    ctx = headers.context(platform, f"user:{body.username}", body.model_dump(mode="json"))
    result = register_user(platform.store, users.RegisterUser(**body.model_dump()), ctx)
    mark_accepted(result, response)
    response.headers["Location"] = f"/users/{body.username}"
    return {"username": body.username, "version": result.version, "position": result.position}


@router.post("/users/{username}", response_model=UserAccepted)
def change(
    username: str,
    body: ChangeUserRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> dict[str, Any]:
    """Change a user's name, role, department, region, city, e-mail or activity (fields sent only).
    Tokens already issued keep their claims until they expire."""
    changes = {f: getattr(body, f) for f in body.model_fields_set}
    ctx = headers.context(platform, f"user:{username}", body.model_dump(mode="json"))
    result = change_user(platform.store, username, users.ChangeUser(changes), ctx)
    mark_accepted(result, response)
    return {"username": username, "version": result.version, "position": result.position}


@router.post("/users/{username}/managers", response_model=UserAccepted)
def set_managers(
    username: str,
    body: AssistantManagersRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> dict[str, Any]:
    """Attach an assistant to the managers they work for (the list replaces the last one):
    they create and fill those managers' leads and see what those managers see."""
    ctx = headers.context(platform, f"user:{username}:managers", body.model_dump(mode="json"))
    command = users.SetAssistantManagers(tuple(body.managers))
    result = set_assistant_managers(platform.store, username, command, ctx)
    mark_accepted(result, response)
    return {"username": username, "version": result.version, "position": result.position}


@router.put("/users/{username}/cost-rate", response_model=UserAccepted)
def put_cost_rate(
    username: str,
    body: CostRateRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> dict[str, Any]:
    """Set what an hour of the person's work costs from ``valid_from`` on (administrators
    and top management): the rate in force on a day prices the hours logged that day in
    the projects' cost and margin. A rate set again for the same day replaces it."""
    ctx = headers.context(platform, f"user:{username}:cost-rate", body.model_dump(mode="json"))
    command = users.SetCostRate(body.rate, body.valid_from, body.reason, body.currency)
    result = set_cost_rate(platform.store, username, command, ctx)
    mark_accepted(result, response)
    return {"username": username, "version": result.version, "position": result.position}


@router.get("/users", response_model=UserPage)
def list_users(
    cursor: ReadCursor,
    role: users.Role | None = None,
    department: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict[str, Any]:
    """The directory, by username, filtered by role and department."""
    items, total = user_queries.list_users(
        cursor, None if role is None else role.value, department, limit, offset
    )
    return {
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/users/{username}", response_model=UserView)
def get_user(username: str, platform: PlatformDep) -> dict[str, Any]:
    """One user, from the event store."""
    if not users.USERNAME.match(username):
        raise StreamNotFound(f"user {username} not found")
    state = load_user(platform.store, username)
    return {
        "username": state.username,
        "name": state.name,
        "role": state.role.value,
        "department": state.department,
        "region": state.region,
        "city": state.city,
        "email": state.email,
        "active": state.active,
        "version": state.version,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "managers": list(state.managers),
    }


# --- passwords (the workspace's sign-in; hashes beside the key store, never an event) ----


class SetPasswordRequest(Strict):
    password: str = Field(
        min_length=MIN_PASSWORD,
        max_length=MAX_PASSWORD,
        description=f"The new password ({MIN_PASSWORD} to {MAX_PASSWORD} characters)",
    )


class ChangeOwnPasswordRequest(Strict):
    old_password: str = Field(max_length=MAX_PASSWORD, description="The current password")
    new_password: str = Field(
        min_length=MIN_PASSWORD,
        max_length=MAX_PASSWORD,
        description=f"The new password ({MIN_PASSWORD} to {MAX_PASSWORD} characters)",
    )


def _store_password(platform: Platform, user: str, password: str, field: str, by: str) -> None:
    try:
        check_password_shape(password, field)
    except ValueError as error:
        raise InvalidValue(field, str(error)) from None
    platform.credentials.set_password(user, password, set_by=by)


@router.put("/users/{username}/password", status_code=204)
def set_password(
    username: str, body: SetPasswordRequest, platform: PlatformDep, principal: CurrentUser
) -> Response:
    """Set a directory user's workspace password (administrators). Only its argon2id hash
    is kept, beside the key store; nothing reaches the event log."""
    if not users.USERNAME.match(username):
        raise StreamNotFound(f"user {username} not found")
    load_user(platform.store, username)  # 404 for a user not in the directory
    _store_password(platform, username, body.password, "password", principal.user)
    return Response(status_code=204)


@router.put("/me/password", status_code=204)
def change_own_password(
    body: ChangeOwnPasswordRequest, platform: PlatformDep, principal: CurrentUser
) -> Response:
    """Change one's own workspace password: the current one is required."""
    if not platform.credentials.check(principal.user, body.old_password):
        raise InvalidValue("old_password", "old_password is not your current password")
    _store_password(platform, principal.user, body.new_password, "new_password", principal.user)
    return Response(status_code=204)

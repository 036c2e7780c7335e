"""The request limits' fast paths (issue 17: the event loop's cost per command).

A body whose declared length is within the limit and that comes without a
Transfer-Encoding reaches the app with the server's own receive and send (nothing to
count); every other body is still counted, so the limit stays exact. A query string no
longer than the bound cannot hold a value over it (decoding never lengthens a value), and
one that is longer is still checked value by value.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from read_api.body_limit import BodyLimit
from read_api.deps import command_headers
from read_api.routes import leads
from schemas.limits import MAX_QUERY_TEXT

LIMIT = 100


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/leads", "headers": headers}


def _run(headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[list[Message], list[Any]]:
    """Serve one request through BodyLimit to an app that reads the whole body; the
    messages sent, and the receive and send callables the app was given."""
    sent: list[Message] = []
    given_to_app: list[Any] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive_: Receive, send_: Send) -> None:
        given_to_app.extend([receive_, send_])
        await receive_()
        await send_({"type": "http.response.start", "status": 200, "headers": []})
        await send_({"type": "http.response.body", "body": b"ok"})

    middleware = BodyLimit(app, max_bytes=LIMIT)
    asyncio.run(middleware(_scope(headers), receive, send))
    given_to_app.insert(0, (receive, send))
    return sent, given_to_app


def test_a_declared_body_within_the_limit_reaches_the_app_unwrapped() -> None:
    sent, calls = _run([(b"content-length", b"10")], b"x" * 10)
    (receive, send), app_receive, app_send = calls
    assert app_receive is receive
    assert app_send is send
    assert sent[0]["status"] == 200


def test_a_declared_length_with_a_transfer_encoding_is_still_counted() -> None:
    headers = [(b"content-length", b"10"), (b"transfer-encoding", b"chunked")]
    sent, calls = _run(headers, b"x" * (LIMIT + 1))
    (receive, _), app_receive, _ = calls
    assert app_receive is not receive
    assert sent[0]["status"] == 413


def test_an_undeclared_body_over_the_limit_is_still_413() -> None:
    sent, _ = _run([], b"x" * (LIMIT + 1))
    assert sent[0]["status"] == 413


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(
        alphabet=st.sampled_from("a Я&=+%/€"),
        min_size=MAX_QUERY_TEXT - 2,
        max_size=MAX_QUERY_TEXT + 2,
    )
)
def test_a_query_value_is_bounded_by_its_decoded_length(client: TestClient, text: str) -> None:
    """However long its encoding, a value is refused exactly when its decoded text is
    over the bound."""
    response = client.get("/leads", params={"manager": text})
    if len(text) > MAX_QUERY_TEXT:
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "manager"
    else:
        assert response.status_code == 200, response.text


def test_a_lead_command_solves_no_dependency_but_its_headers() -> None:
    """Every dependency is solved on the event loop for every command: a lead command
    takes the platform and the principal through its headers, not through dependencies
    of its own (the app-wide checks aside)."""
    commands = [
        route
        for route in leads.router.routes
        if isinstance(route, APIRoute) and "POST" in (route.methods or set())
    ]
    assert len(commands) >= 9
    for route in commands:
        calls = [dependency.call for dependency in route.dependant.dependencies]
        assert calls == [command_headers], route.path
        assert route.dependant.dependencies[0].dependencies == [], route.path

"""The limits of a request: its body (413 over ``max_body_bytes``) and the length of
each query-string value (422 naming the parameter over ``MAX_QUERY_TEXT``).

A pure ASGI middleware, outermost, so it runs before authentication, routing and
parsing: a declared ``Content-Length`` over the limit is answered at once, without
reading a byte of the body (a client that declares 100 MB and sends nothing gets its 413
immediately); a body without a declared length (chunked) is counted as it streams in and
refused as soon as it passes the limit, before anything parses it.
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from read_api.errors import BadRequestValue, PayloadTooLarge, payload_too_large
from schemas.limits import MAX_QUERY_TEXT


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _framing(scope)
        if declared is not None and declared > self.max_bytes:
            await payload_too_large(self.max_bytes)(scope, receive, send)
            return
        if declared is not None and not chunked:
            # the server delivers exactly the declared length, within the limit: nothing
            # to count, and no wrapping of receive and send on every command
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except PayloadTooLarge:
            # raised where no exception handler answered it (the app maps it to the same 413)
            if started:
                raise
            await payload_too_large(self.max_bytes)(scope, receive, send)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The body's declared length (None when undeclared or malformed) and whether it
    comes with a Transfer-Encoding (which overrides any declared length)."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            # the server already refused a malformed length; be safe on other servers
            declared = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


async def bounded_query(request: Request) -> None:
    """The app-wide dependency bounding every query-string value (the OpenAPI document
    states the bound as each string parameter's maxLength)."""
    if len(request.scope["query_string"]) <= MAX_QUERY_TEXT:
        return  # decoding never lengthens a value: none of them can be over the bound
    for name, value in request.query_params.multi_items():
        if len(value) > MAX_QUERY_TEXT:
            raise BadRequestValue(name, f"must be at most {MAX_QUERY_TEXT} characters")

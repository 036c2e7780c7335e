"""Every error the API can answer with, mapped to a status code in this one place.

Bodies share one shape: ``{"detail": message, "code": kind, ...}`` plus the field,
the rule or the current version where one applies.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from eventsourcing.persistence import OperationalError as StoreUnavailable
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aggregates.errors import InvalidValue, NotPermitted, RuleViolation
from commands.context import IdempotencyKeyReused, StreamNotFound, VersionConflict

log = logging.getLogger(__name__)


class ReadModelsBehind(Exception):
    def __init__(self, wanted: int, current: int, waited: float) -> None:
        super().__init__(
            f"the read models are at position {current}, not yet {wanted}, after waiting "
            f"{waited:g}s: retry shortly"
        )
        self.wanted = wanted
        self.current = current


class Unauthenticated(Exception):
    """No usable bearer token (401)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PayloadTooLarge(StarletteHTTPException):
    """A request body over the configured limit (413), found while it streams in.

    An HTTP exception, so the framework's body parsing lets it through unchanged."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large_message(max_bytes))
        self.max_bytes = max_bytes


def too_large_message(max_bytes: int) -> str:
    return f"the request body is larger than the limit of {max_bytes} bytes"


def payload_too_large(max_bytes: int) -> JSONResponse:
    """The 413 answer; also sent by the body-limit middleware before the app runs."""
    return JSONResponse(
        status_code=413,
        content=_body("payload_too_large", too_large_message(max_bytes), max_bytes=max_bytes),
        headers={"Connection": "close"},
    )


class BadRequestValue(Exception):
    """A header or query parameter with a value the API cannot use (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def allowed_methods(request: Request, exc: StarletteHTTPException) -> list[str]:
    """Every method the request's path answers, as the OpenAPI document lists them (the
    router names only those of the first route matching the path, one route per method);
    for a path outside the document (its own pages), the router's answer."""
    path = request.scope["path"]
    methods = {
        method.upper()
        for template, operations in request.app.openapi()["paths"].items()
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path)
        for method in operations
    }
    if not methods:
        allow = (getattr(exc, "headers", None) or {}).get("Allow", "")
        methods = {m.strip() for m in allow.split(",") if m.strip()}
    return sorted(methods)


def _body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "code": code, **extra}


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    if loc and loc[0] == "header":
        return parts[1] if len(parts) > 1 else "header"
    if loc and loc[0] in ("query", "path"):
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": "body" if e.get("type") == "json_invalid" else _location(e.get("loc", ())),
                "message": e.get("msg", "invalid"),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return JSONResponse(
            status_code=422,
            content=_body(
                "invalid_request",
                f"{first['field']}: {first['message']}",
                field=first["field"],
                errors=errors,
            ),
        )

    @app.exception_handler(InvalidValue)
    async def _invalid(_: Request, exc: InvalidValue) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content=_body(
                "invalid_value",
                exc.message,
                field=exc.field,
                errors=[{"field": exc.field, "message": exc.message}],
            ),
        )

    @app.exception_handler(BadRequestValue)
    async def _bad_value(_: Request, exc: BadRequestValue) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content=_body(
                "invalid_request",
                f"{exc.field}: {exc.message}",
                field=exc.field,
                errors=[{"field": exc.field, "message": exc.message}],
            ),
        )

    @app.exception_handler(RuleViolation)
    async def _rule(_: Request, exc: RuleViolation) -> JSONResponse:
        return JSONResponse(
            status_code=409,
            content=_body("rule_violation", exc.message, rule=exc.rule, **exc.details),
        )

    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(_: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content=_body("unauthenticated", exc.message),
            headers={"WWW-Authenticate": 'Bearer realm="leadledger"'},
        )

    @app.exception_handler(NotPermitted)
    async def _forbidden(_: Request, exc: NotPermitted) -> JSONResponse:
        return JSONResponse(
            status_code=403, content=_body("not_permitted", exc.message, rule=exc.rule)
        )

    @app.exception_handler(VersionConflict)
    async def _conflict(_: Request, exc: VersionConflict) -> JSONResponse:
        return JSONResponse(
            status_code=409,
            content=_body("version_conflict", exc.message, current_version=exc.current_version),
            headers={"ETag": f'"{exc.current_version}"'},
        )

    @app.exception_handler(StreamNotFound)
    async def _not_found(_: Request, exc: StreamNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content=_body("not_found", exc.message))

    @app.exception_handler(IdempotencyKeyReused)
    async def _key_reused(_: Request, exc: IdempotencyKeyReused) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content=_body("idempotency_key_reused", exc.message, field="Idempotency-Key"),
        )

    @app.exception_handler(ReadModelsBehind)
    async def _behind(_: Request, exc: ReadModelsBehind) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content=_body(
                "read_models_behind", str(exc), position=exc.current, min_position=exc.wanted
            ),
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        log.error("event store unavailable: %s", exc)
        return JSONResponse(
            status_code=503,
            content=_body("event_store_unavailable", "the event store is unavailable: retry"),
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(PayloadTooLarge)
    async def _too_large(_: Request, exc: PayloadTooLarge) -> JSONResponse:
        return payload_too_large(exc.max_bytes)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # the framework could not read the body as JSON: not UTF-8 (UTF-16 or UTF-32)
            # text, or a number of more digits than Python converts
            message = f"the body must be JSON text in UTF-8 ({str(exc.__cause__)[:200]})"
            return JSONResponse(
                status_code=422,
                content=_body(
                    "invalid_request",
                    f"body: {message}",
                    field="body",
                    errors=[{"field": "body", "message": message}],
                ),
            )
        if exc.status_code == 405:
            allowed = allowed_methods(request, exc)
            return JSONResponse(
                status_code=405,
                content=_body(
                    "http_error",
                    f"{request.method} is not allowed here (allowed: {', '.join(allowed)})",
                ),
                headers={"Allow": ", ".join(allowed)},
            )
        code = "not_found" if exc.status_code == 404 else "http_error"
        return JSONResponse(
            status_code=exc.status_code,
            content=_body(code, str(exc.detail)),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse(
            status_code=500, content=_body("internal_error", "unexpected server error")
        )

"""The OpenAPI document, made to tell the truth in one place.

FastAPI declares only what a route names; this completes every operation from the rules
the API actually follows (read_api/access.py, read_api/errors.py, read_api/body_limit.py):

- every error status an operation can answer, each with LeadLedger's error body
  (``ErrorBody``) in place of FastAPI's ``HTTPValidationError``: 401 and 403 on every
  operation behind a token, 404 where a path names a record, 409 on commands, 413 on
  bodies, 422 wherever a parameter or a body is read, 503 where the read models or the
  event store are consulted;
- the headers those answers carry (``WWW-Authenticate``, ``Retry-After``);
- the bearer token as the security scheme of every operation outside ``PUBLIC``;
- the bound of every query-string value, as each free-text parameter's ``maxLength``;
- links from every operation that creates a record to the operations on that record, so
  a client (or a stateful test) can follow a creation to the record it made.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from read_api.access import PUBLIC
from schemas.errors import ErrorBody, FieldError
from schemas.limits import MAX_QUERY_TEXT

ERROR_REF = {"$ref": "#/components/schemas/Error"}
BEARER = "bearer"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
PATH_PARAM = re.compile(r"\{([^}]+)\}")

NO_STORE = frozenset(
    {
        ("GET", "/me"),
        ("GET", "/funnels"),
        ("GET", "/deal-funnels"),
        ("GET", "/departments"),
        ("GET", "/project-statuses"),
        ("GET", "/asyncapi.json"),
    }
)
"""Operations answered from configuration or the token alone (no 503)."""

DESCRIPTIONS = {
    "401": "No usable bearer token (missing, malformed, wrongly signed or expired)",
    "403": "The role may not call this operation, or may not act on this record (names the rule)",
    "404": "No such record, or not one the caller may see",
    "409": "The record's state forbids the command (names the rule), or its version is not "
    "the one If-Match expects (current_version)",
    "413": "The request body is over the configured limit (max_bytes)",
    "422": "An invalid body, header or parameter; names the field",
    "503": "The read models are behind min_position after the wait, or the event store is "
    "unavailable: retry after Retry-After seconds",
}

HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "The bearer scheme",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    "503": {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "required": True,
            "schema": {"type": "string"},
        }
    },
}


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses the operation can answer (see the module's rules)."""
    public = (method, path) in PUBLIC
    has_body = "requestBody" in operation
    has_params = bool(operation.get("parameters")) or has_body
    statuses = []
    if not public:
        statuses += ["401", "403"]
    if PATH_PARAM.search(path):
        statuses.append("404")
    if method in ("POST", "PUT", "DELETE", "PATCH"):
        statuses.append("409")
    if has_body:
        statuses.append("413")
    if has_params:
        statuses.append("422")
    if (method, path) not in NO_STORE:
        statuses.append("503")
    return statuses


def _declare_errors(doc: dict[str, Any]) -> None:
    for path, item in doc["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if (method.upper(), path) not in PUBLIC:
                operation["security"] = [{BEARER: []}]
            responses = operation.setdefault("responses", {})
            for status in error_statuses(method.upper(), path, operation):
                response = responses.setdefault(status, {"description": DESCRIPTIONS[status]})
                content = response.get("content", {}).get("application/json", {})
                if not content.get("schema") or _is_fastapi_validation(content["schema"]):
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
                if status in HEADERS:
                    response.setdefault("headers", {}).update(HEADERS[status])
    doc.setdefault("components", {}).setdefault("securitySchemes", {})[BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A token from `leadledger token <user>`",
    }
    schemas = doc["components"].setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    error.pop("$defs", None)
    schemas["Error"] = error
    schemas["FieldError"] = FieldError.model_json_schema()


def _is_fastapi_validation(schema: dict[str, Any]) -> bool:
    return schema.get("$ref") == "#/components/schemas/HTTPValidationError"


def _success(operation: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            return status, response
    return None


def _response_fields(doc: dict[str, Any], response: dict[str, Any]) -> set[str]:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if not ref.startswith("#/components/schemas/"):
        return set()
    model = doc["components"]["schemas"].get(ref.rsplit("/", 1)[1], {})
    return set(model.get("properties", {}))


def _declare_links(doc: dict[str, Any]) -> None:
    """Link each creation (a POST answering an id its own path does not name) to every
    operation whose path parameters that id, and the creation's own, fill."""
    targets: list[tuple[str, set[str]]] = []
    for path, item in doc["paths"].items():
        params = set(PATH_PARAM.findall(path))
        for method in METHODS:
            operation = item.get(method)
            if params and operation is not None and "operationId" in operation:
                targets.append((operation["operationId"], params))
    for path, item in doc["paths"].items():
        own = set(PATH_PARAM.findall(path))
        operation = item.get("post")
        success = None if operation is None else _success(operation)
        if operation is None or success is None:
            continue
        _, response = success
        created = _response_fields(doc, response) - own
        links: dict[str, Any] = {}
        for operation_id, params in targets:
            from_body = params & created
            if not from_body or not params <= created | own:
                continue
            links[operation_id] = {
                "operationId": operation_id,
                "parameters": {
                    name: (
                        f"$response.body#/{name}" if name in from_body else f"$request.path.{name}"
                    )
                    for name in sorted(params)
                },
            }
        if links:
            response["links"] = links


def _describe_parameters(doc: dict[str, Any]) -> None:
    """Parameters as they travel: a header, query or path value is absent or a string,
    never JSON null (FastAPI writes an optional one as ``anyOf [..., null]``, and "null"
    would be refused); a free-text query value states its bound (read_api/body_limit.py)
    unless it states a tighter one."""
    for item in doc["paths"].values():
        for method in METHODS:
            for parameter in (item.get(method) or {}).get("parameters", []):
                schema = parameter.get("schema", {})
                if "anyOf" in schema:
                    branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
                    if len(branches) == 1:
                        del schema["anyOf"]
                        schema.update(branches[0])
                    else:
                        schema["anyOf"] = branches
                if parameter.get("in") != "query":
                    continue
                for branch in [schema, *schema.get("anyOf", [])]:
                    if branch.get("type") == "string" and "enum" not in branch:
                        branch.setdefault("maxLength", MAX_QUERY_TEXT)


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _declare_errors(doc)
            _declare_links(doc)
            _describe_parameters(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

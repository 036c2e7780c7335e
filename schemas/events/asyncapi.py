"""The AsyncAPI 3.0 document of LeadLedger's Kafka topics, built from the public models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.events.base import tidy_description
from schemas.events.envelope import EventEnvelope
from schemas.events.registry import (
    AGGREGATE_TYPES,
    CURRENT,
    DEFAULT_TOPIC_PREFIX,
    PublishedEventType,
    topic_for,
)

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DEFAULT_SERVERS = {"production": "kafka:9092"}
_SCHEMAS = "#/components/schemas/"
HEADERS_SCHEMA = "KafkaHeaders"

DESCRIPTION = """\
Every fact LeadLedger records, published for downstream services (accounting, BI, \
notifications) on one Kafka topic per aggregate type, `<prefix>.<aggregate_type>`. The HTTP \
event feed carries the same envelopes.

Delivery guarantees:

- **At least once.** An event may be delivered more than once (after a relay restart, a \
broker failover). Deduplicate by `event_id`: it is derived from the event's aggregate and \
version, so a redelivered event carries the id it had the first time.
- **Ordered per aggregate.** The message key is the aggregate id, so the events of one \
aggregate arrive on one partition in `aggregate_version` order. There is no order between \
aggregates or topics; `position` gives LeadLedger's global order.
- **Current versions only.** Events stored in an older schema version are upcast before \
publishing: `data` always follows the current version named by `schema_version` (and the \
`schema_version` header). Older versions' schemas stay published for reference.
- **Whitelisted payloads.** `data` holds only the fields its public schema declares; \
sensitive data never leaves LeadLedger. A version's schema only ever changes compatibly \
(new optional fields, new enum values); anything else is a new version.
"""

_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Kafka record headers (UTF-8 strings) for routing without parsing the value.",
    "properties": {
        "event_type": {"type": "string", "description": "The event type, as `type`."},
        "schema_version": {
            "type": "string",
            "pattern": "^[1-9][0-9]*$",
            "description": "The payload's schema version, as `schema_version`.",
        },
        "event_id": {
            "type": "string",
            "format": "uuid",
            "description": "The stable event id, as `event_id`: deduplicate by it.",
        },
        "position": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "The global position, as `position`.",
        },
        "correlation_id": {
            "type": "string",
            "description": "As `correlation_id`; the empty string when there is none.",
        },
        "aggregate_type": {"type": "string", "description": "As `aggregate_type`."},
    },
    "required": [
        "event_type",
        "schema_version",
        "event_id",
        "position",
        "correlation_id",
        "aggregate_type",
    ],
}


def _component_schemas() -> dict[str, Any]:
    mode: Literal["validation"] = "validation"
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [(EventEnvelope, mode)]
    models.extend((t.model, mode) for t in CURRENT.values())
    _, definitions = models_json_schema(models, ref_template=_SCHEMAS + "{model}")
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    for t in CURRENT.values():
        if t.model.__name__ not in schemas:  # pragma: no cover - pydantic renamed it
            raise ValueError(f"no component schema for {t.model.__name__}")
        schemas[_envelope_name(t)] = _envelope_of(t)
    schemas[HEADERS_SCHEMA] = _HEADERS
    return dict(sorted(schemas.items()))


def _envelope_name(t: PublishedEventType) -> str:
    return f"{t.name}Envelope"


def _envelope_of(t: PublishedEventType) -> dict[str, Any]:
    return {
        "title": f"{t.name} v{t.version} envelope",
        "allOf": [
            {"$ref": _SCHEMAS + EventEnvelope.__name__},
            {
                "type": "object",
                "properties": {
                    "type": {"const": t.name},
                    "schema_version": {"const": t.version},
                    "aggregate_type": {"const": t.aggregate_type},
                    "data": {"$ref": _SCHEMAS + t.model.__name__},
                },
            },
        ],
    }


def _message(t: PublishedEventType) -> dict[str, Any]:
    description = tidy_description(t.model.__doc__ or t.name)
    return {
        "name": t.name,
        "title": f"{t.name} v{t.version}",
        "summary": description.split("\n\n")[0],
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": _SCHEMAS + HEADERS_SCHEMA},
                {
                    "type": "object",
                    "properties": {
                        "event_type": {"const": t.name},
                        "schema_version": {"const": str(t.version)},
                        "aggregate_type": {"const": t.aggregate_type},
                    },
                },
            ]
        },
        "payload": {"$ref": _SCHEMAS + _envelope_name(t)},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "format": "uuid",
                    "description": "The aggregate id: one aggregate's events share a partition.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def asyncapi_document(
    prefix: str = DEFAULT_TOPIC_PREFIX, servers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document: servers by name → Kafka ``host:port``, one channel per
    aggregate type (its topic under ``prefix``), one ``send`` operation per channel."""
    servers = DEFAULT_SERVERS if servers is None else servers
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for aggregate_type in AGGREGATE_TYPES:
        published = [t for t in CURRENT.values() if t.aggregate_type == aggregate_type]
        topic = topic_for(aggregate_type, prefix)
        channels[aggregate_type] = {
            "address": topic,
            "title": f"{aggregate_type} events",
            "description": f"Every event of the `{aggregate_type}` aggregates, keyed by "
            "aggregate id.",
            "messages": {t.name: {"$ref": f"#/components/messages/{t.name}"} for t in published},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        operations[f"publish_{aggregate_type}"] = {
            "action": "send",
            "title": f"Publish {aggregate_type} events",
            "summary": f"LeadLedger publishes every {aggregate_type} event on {topic}.",
            "channel": {"$ref": f"#/channels/{aggregate_type}"},
            "messages": [
                {"$ref": f"#/channels/{aggregate_type}/messages/{t.name}"} for t in published
            ],
        }
        messages.update({t.name: _message(t) for t in published})
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:leadledger:events",
        "info": {
            "title": "LeadLedger events",
            "version": DOCUMENT_VERSION,
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            name: {
                "host": host,
                "protocol": "kafka",
                "description": f"Kafka cluster ({name})",
            }
            for name, host in servers.items()
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _component_schemas(),
            "messages": dict(sorted(messages.items())),
        },
    }

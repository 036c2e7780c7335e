"""Stored events as downstream services receive them: the published envelope.

One mapping serves Kafka and the HTTP feed, so both carry the same JSON. The payload is
the stored event upcast to its current version and cut down to the fields its public
schema (``schemas/events``) declares: a field the schema does not name, and any field
the domain marks sensitive, never leaves LeadLedger. The event id is derived from the
event's stream and version, so a redelivered event carries the id it had the first time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha1
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from event_store.codec import EventCodec
from event_store.recorders import NotificationRow
from schemas.events.registry import CURRENT, PublishedEventType, topic_for

EVENT_ID_NAMESPACE = UUID("6f1c5a52-1d0e-4c55-9a37-5e2b8f4d0c11")
"""Fixed forever: event ids are uuid5(namespace, "<aggregate id>:<aggregate version>")."""

DEFAULT_TOPIC_PREFIX = "leadledger"


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


def event_id(stream_id: str, version: int) -> str:
    """``str(uuid5(EVENT_ID_NAMESPACE, f"{stream_id}:{version}"))``, written out: the relay
    derives one per event, and the uuid module's objects cost four times as much."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + f"{stream_id}:{version}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Message(NamedTuple):
    """One event ready for Kafka: topic, key, headers, value, and where it came from."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    position: int
    event_id: str


@dataclass(frozen=True)
class _Route:
    topic: str
    aggregate_type: str
    version: int
    fields: tuple[str, ...]
    type_header: bytes
    version_header: bytes
    aggregate_header: bytes


class Publication:
    """Turns notification rows into published envelopes and Kafka messages."""

    def __init__(
        self,
        codec: EventCodec,
        prefix: str = DEFAULT_TOPIC_PREFIX,
        published: dict[str, PublishedEventType] | None = None,
    ) -> None:
        self.codec = codec
        self.prefix = prefix
        published = CURRENT if published is None else published
        self._routes: dict[str, _Route] = {}
        for cls in codec.event_types:
            name = cls.__name__
            public = published.get(name)
            if public is None:
                raise ValueError(f"event type '{name}' has no published schema")
            if public.version != cls.schema_version:
                raise ValueError(
                    f"'{name}' is stored in version {cls.schema_version} but published in "
                    f"version {public.version}"
                )
            fields = tuple(sorted(public.fields - cls.sensitive_fields))
            self._routes[name] = _Route(
                topic=topic_for(public.aggregate_type, prefix),
                aggregate_type=public.aggregate_type,
                version=public.version,
                fields=fields,
                type_header=name.encode(),
                version_header=str(public.version).encode(),
                aggregate_header=public.aggregate_type.encode(),
            )

    @property
    def topics(self) -> list[str]:
        return sorted({route.topic for route in self._routes.values()})

    def envelope(self, row: NotificationRow) -> dict[str, Any]:
        """The published JSON of one stored event, as a dict."""
        return self._envelope(row, self._routes[row[3]], event_id(row[1], row[2]))

    def _envelope(self, row: NotificationRow, route: _Route, the_id: str) -> dict[str, Any]:
        position, stream_id, version, topic, state = row
        stored = orjson.loads(state)
        if stored.get("schema_version", 1) != route.version:
            stored = self.codec.upcast(topic, stored)
        return {
            "event_id": the_id,
            "type": topic,
            "schema_version": route.version,
            "aggregate_type": route.aggregate_type,
            "aggregate_id": stream_id,
            "aggregate_version": version,
            "position": position,
            "occurred_at": stored["at"],
            "actor": stored["actor"],
            "command_id": stored["command_id"],
            "correlation_id": stored.get("correlation_id"),
            "data": {name: stored[name] for name in route.fields if name in stored},
        }

    def envelopes(self, rows: Iterable[NotificationRow]) -> list[dict[str, Any]]:
        return [self.envelope(row) for row in rows]

    def messages(self, rows: Sequence[NotificationRow]) -> list[Message]:
        """Kafka messages of the rows, in order (the relay's hot path: one pass, no
        intermediate objects beyond the envelope)."""
        out: list[Message] = []
        append, routes, envelope_of, dumps = out.append, self._routes, self._envelope, orjson.dumps
        for row in rows:
            route = routes[row[3]]
            the_id = event_id(row[1], row[2])
            envelope = envelope_of(row, route, the_id)
            correlation = envelope["correlation_id"]
            append(
                Message(
                    route.topic,
                    row[1].encode(),
                    dumps(envelope),
                    [
                        ("event_type", route.type_header),
                        ("schema_version", route.version_header),
                        ("event_id", the_id.encode()),
                        ("position", b"%d" % row[0]),
                        ("correlation_id", correlation.encode() if correlation else b""),
                        ("aggregate_type", route.aggregate_header),
                    ],
                    row[0],
                    the_id,
                )
            )
        return out

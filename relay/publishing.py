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


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
"""The hex digit of a digest's ninth byte's high nibble with the RFC 4122 variant set."""


def event_id(stream_id: str, version: int) -> str:
    """``str(uuid5(EVENT_ID_NAMESPACE, f"{stream_id}:{version}"))``, written out: the relay
    derives one per event, and the uuid module's objects cost four times as much. The
    version nibble (digit 13) becomes ``5``; digit 17 takes the variant bits ``10``."""
    h = sha1(_NAMESPACE_BYTES + f"{stream_id}:{version}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


class Message(NamedTuple):
    """One event ready for Kafka: topic, key, headers, value, and where it came from."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    position: int
    event_id: str


_NO_CORRELATION = ("correlation_id", b"")


@dataclass(frozen=True)
class _Route:
    topic: str
    aggregate_type: str
    version: int
    fields: tuple[str, ...]
    type_header: tuple[str, bytes]
    version_header: tuple[str, bytes]
    aggregate_header: tuple[str, bytes]
    head: bytes
    """The envelope's bytes between the event id and ``"aggregate_id"``: the same for every
    event of the type."""


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
                type_header=("event_type", name.encode()),
                version_header=("schema_version", str(public.version).encode()),
                aggregate_header=("aggregate_type", public.aggregate_type.encode()),
                head=b'","type":%b,"schema_version":%d,"aggregate_type":%b,'
                % (orjson.dumps(name), public.version, orjson.dumps(public.aggregate_type)),
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
        """Kafka messages of the rows, in order: the relay's hot path. The value holds
        exactly the bytes of ``orjson.dumps(self.envelope(row))`` (a property test says
        so): the parts every event of a type shares are written once per type
        (``_Route.head``), the rest of the envelope from ``aggregate_id`` on is one dumped
        dict whose opening brace is cut off, and the headers every event of a type shares
        are the same tuples."""
        out: list[Message] = []
        append, routes, loads, dumps = out.append, self._routes, orjson.loads, orjson.dumps
        upcast, namespace, variant = self.codec.upcast, _NAMESPACE_BYTES, _VARIANT
        new = tuple.__new__  # Message(...) without the named tuple's Python-level __new__
        for position, stream_id, version, topic, state in rows:
            route = routes[topic]
            stored = loads(state)
            if stored.get("schema_version", 1) != route.version:
                stored = upcast(topic, stored)
            h = sha1(namespace + f"{stream_id}:{version}".encode()).hexdigest()
            the_id = f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:32]}"
            id_bytes = the_id.encode()
            correlation = stored.get("correlation_id")
            tail = dumps(
                {
                    "aggregate_id": stream_id,
                    "aggregate_version": version,
                    "position": position,
                    "occurred_at": stored["at"],
                    "actor": stored["actor"],
                    "command_id": stored["command_id"],
                    "correlation_id": correlation,
                    "data": {name: stored[name] for name in route.fields if name in stored},
                }
            )
            headers = [
                route.type_header,
                route.version_header,
                ("event_id", id_bytes),
                ("position", b"%d" % position),
                ("correlation_id", correlation.encode()) if correlation else _NO_CORRELATION,
                route.aggregate_header,
            ]
            value = b'{"event_id":"%b%b%b' % (id_bytes, route.head, tail[1:])
            append(
                new(Message, (route.topic, stream_id.encode(), value, headers, position, the_id))
            )
        return out

"""Events to readable JSON and back.

The stored topic is the event type's name (``LeadCreated``); the state is UTF-8 JSON of
the event's fields plus ``schema_version``. Decoding is driven by each event class's
type hints, so adding an event type means registering its class, nothing more.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

from aggregates.base import DomainEvent

Converter = Callable[[Any], Any]


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)


def dumps_fields(fields: dict[str, Any]) -> bytes:
    """``dumps`` of a dict whose keys are text (an event's fields): the same bytes, made
    without ``OPT_NON_STR_KEYS`` (which costs a third of an imported event's encoding);
    a dict with another key inside is written by ``dumps``."""
    try:
        return orjson.dumps(fields, default=_default)
    except TypeError:
        return dumps(fields)


def dumps_http(obj: Any) -> bytes:
    """JSON for HTTP responses: as ``dumps``, with UTC times written with a ``Z``."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)


def to_jsonable(obj: Any) -> Any:
    """A value as plain JSON types (what ``dumps`` would write)."""
    return orjson.loads(dumps(obj))


PROVENANCE_FIELDS = ("actor_role", "command", "cause")


def event_fields(event: DomainEvent) -> dict[str, Any]:
    """The event's fields, shallow (nested dataclasses stay objects; orjson writes them)."""
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def _identity(value: Any) -> Any:
    return value


def _converter_for(tp: Any) -> Converter:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _converter_for(members[0]) if len(members) == 1 else _identity
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        args = typing.get_args(tp)
        item = _converter_for(args[0]) if args else _identity
        return lambda v: tuple(item(x) for x in v)
    if origin is list:
        (arg,) = typing.get_args(tp)
        item = _converter_for(arg)
        return lambda v: [item(x) for x in v]
    if tp is Decimal:
        return Decimal
    if tp is datetime:
        return datetime.fromisoformat
    if tp is date:
        return date.fromisoformat
    if tp is UUID:
        return UUID
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_converter(tp)
    return _identity


_DATACLASS_CONVERTERS: dict[type[Any], Converter] = {}
"""Each dataclass's decoder, built once per process (reading the type hints is slow; every
event store and platform of the process shares them)."""


def _dataclass_converter(cls: type[Any]) -> Converter:
    built = _DATACLASS_CONVERTERS.get(cls)
    if built is None:
        built = _DATACLASS_CONVERTERS[cls] = _build_dataclass_converter(cls)
    return built


def _build_dataclass_converter(cls: type[Any]) -> Converter:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    converting = [
        (name, conv) for name in names if (conv := _converter_for(hints[name])) is not _identity
    ]

    def convert(data: dict[str, Any]) -> Any:
        kwargs = {name: data[name] for name in names if name in data}
        for name, conv in converting:
            if name in kwargs:
                kwargs[name] = conv(kwargs[name])
        return cls(**kwargs)

    return convert


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a stored event's fields of one version into the next version's."""


class EventCodec:
    """Registry of event classes by type name, with their decoders.

    An event stored in an older ``schema_version`` than its class's is read through the
    registered upcasters, one version step at a time, so the rest of LeadLedger only ever
    sees current versions. Stored events are never rewritten.
    """

    def __init__(
        self,
        event_types: Iterable[type[DomainEvent]],
        upcasters: dict[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        self._upcasters = dict(upcasters or {})
        self._decoders: dict[str, Converter] = {}
        self._classes: dict[str, type[DomainEvent]] = {}
        for cls in event_types:
            name = cls.__name__
            if name in self._classes:
                raise ValueError(f"event type '{name}' registered twice")
            self._classes[name] = cls
            self._decoders[name] = _dataclass_converter(cls)
            for version in range(1, cls.schema_version):
                if (name, version) not in self._upcasters:
                    raise ValueError(f"event type '{name}' has no upcaster from version {version}")

    def topic(self, event: DomainEvent) -> str:
        return type(event).__name__

    def encode(self, event: DomainEvent) -> bytes:
        fields = event_fields(event)
        for name in PROVENANCE_FIELDS:
            # kept out of the stored form when unknown: events read as they did before
            if fields[name] is None:
                del fields[name]
        fields["schema_version"] = type(event).schema_version
        return dumps(fields)

    def decode(self, topic: str, state: bytes) -> DomainEvent:
        decoder = self._decoders.get(topic)
        if decoder is None:
            raise ValueError(f"unknown event type '{topic}'")
        data = self.upcast(topic, orjson.loads(state))
        event: DomainEvent = decoder(data)
        return event

    def upcast(self, topic: str, data: dict[str, Any]) -> dict[str, Any]:
        """A stored event's fields as its current version has them."""
        current = self._classes[topic].schema_version
        version = data.get("schema_version", 1)
        if version > current:
            raise ValueError(
                f"'{topic}' stored in version {version}, newer than this LeadLedger's {current}"
            )
        while version < current:
            data = self._upcasters[(topic, version)](data)
            version += 1
            data["schema_version"] = version
        return data

    def current_version(self, topic: str) -> int:
        return self._classes[topic].schema_version

    def event_class(self, topic: str) -> type[DomainEvent]:
        return self._classes[topic]

    @property
    def event_types(self) -> list[type[DomainEvent]]:
        return list(self._classes.values())

    def knows(self, topic: str) -> bool:
        return topic in self._classes

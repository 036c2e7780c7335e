"""Every published event type and version, and the aggregate type (topic) it goes to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType

from schemas.events import (
    activities,
    alerts,
    billing,
    company,
    contacts,
    contractor,
    deal,
    directories,
    handoff,
    imports,
    lead,
    limits,
    project,
    sales_plans,
    status_limits,
    timesheets,
    users,
)
from schemas.events.base import PublicPayload

DEFAULT_TOPIC_PREFIX = "leadledger"
_MODULES: tuple[ModuleType, ...] = (
    lead,
    company,
    deal,
    handoff,
    contractor,
    limits,
    project,
    billing,
    timesheets,
    users,
    status_limits,
    alerts,
    sales_plans,
    activities,
    imports,
    contacts,
    directories,
)
_MODEL_NAME = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9]*)V(?P<version>[1-9][0-9]*)$")


@dataclass(frozen=True)
class PublishedEventType:
    """One version of one event type's public payload."""

    name: str
    version: int
    aggregate_type: str
    model: type[PublicPayload]

    @property
    def fields(self) -> frozenset[str]:
        """The payload's top-level field names: all that may leave LeadLedger."""
        return frozenset(self.model.model_fields)


def _collect() -> dict[tuple[str, int], PublishedEventType]:
    found: dict[tuple[str, int], PublishedEventType] = {}
    aggregate_of: dict[str, str] = {}
    for module in _MODULES:
        published: dict[str, tuple[type[PublicPayload], ...]] = module.PUBLISHED
        for aggregate_type, models in published.items():
            for model in models:
                match = _MODEL_NAME.match(model.__name__)
                if match is None:
                    raise ValueError(f"{model.__name__} is not named <EventType>V<version>")
                name, version = match["name"], int(match["version"])
                if (name, version) in found:
                    raise ValueError(f"{name} v{version} is published twice")
                if aggregate_of.setdefault(name, aggregate_type) != aggregate_type:
                    raise ValueError(
                        f"{name} is published on both {aggregate_of[name]} and {aggregate_type}"
                    )
                found[(name, version)] = PublishedEventType(name, version, aggregate_type, model)
    for name, version in found:
        missing = [v for v in range(1, version) if (name, v) not in found]
        if missing:
            raise ValueError(f"{name} v{version} is published but not v{missing[0]}")
    return dict(sorted(found.items()))


ALL_VERSIONS: dict[tuple[str, int], PublishedEventType] = _collect()
"""Every version of every event type ever published, by (event type, version)."""

CURRENT: dict[str, PublishedEventType] = {
    name: ALL_VERSIONS[(name, max(v for n, v in ALL_VERSIONS if n == name))]
    for name in sorted({name for name, _ in ALL_VERSIONS})
}
"""The current (highest) version of each event type, by event type name."""

AGGREGATE_TYPES: tuple[str, ...] = tuple(sorted({t.aggregate_type for t in CURRENT.values()}))


def topic_for(aggregate_type: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The Kafka topic an aggregate type's events are published on."""
    return f"{prefix}.{aggregate_type}"


def current_of(aggregate_type: str) -> list[PublishedEventType]:
    """The current version of every event type published on ``aggregate_type``."""
    return [t for t in CURRENT.values() if t.aggregate_type == aggregate_type]

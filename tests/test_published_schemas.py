"""The public event schemas: compatibility rules, the committed contract, coverage of every
domain event type, and that the schemas accept everything the domain can store."""

from __future__ import annotations

import dataclasses
import json
import shutil
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, cast, get_args
from uuid import UUID

import jsonschema  # type: ignore[import-untyped, unused-ignore]
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates.base import DomainEvent
from aggregates.lead import Outcome as LeadOutcome
from aggregates.rules import HEALTH_LEVELS
from aggregates.users import ROLES
from event_store.codec import EventCodec
from leadledger.wiring import event_codec
from schemas.events.asyncapi import asyncapi_document
from schemas.events.base import HealthLevel, Outcome
from schemas.events.compat import breaking_changes
from schemas.events.deal import HandoffStatus
from schemas.events.envelope import EventEnvelope
from schemas.events.export import (
    check_published,
    published_schema,
    write_published,
)
from schemas.events.registry import (
    AGGREGATE_TYPES,
    ALL_VERSIONS,
    CURRENT,
    PublishedEventType,
    topic_for,
)

PUBLISHED = Path(__file__).resolve().parent.parent / "schemas" / "published"
META_KEYS = frozenset(
    {
        "actor",
        "at",
        "command_id",
        "correlation_id",
        "request_hash",
        "actor_role",
        "command",
        "cause",
    }
)
"""The event fields every event carries; the envelope publishes some of them."""
WIRE_DROPPED = META_KEYS | {"schema_version"}
CODEC = event_codec()
EVENT_CLASSES = sorted(CODEC.event_types, key=lambda c: c.__name__)


# --- breaking_changes -------------------------------------------------------------------


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


STR = {"type": "string"}
INT = {"type": "integer"}
NULLABLE_STR = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def test_identical_schemas_are_compatible() -> None:
    schema = obj(("a",), a=STR, b=NULLABLE_STR)
    assert breaking_changes(schema, schema) == []


def test_removed_property_is_breaking() -> None:
    problems = breaking_changes(obj(("a",), a=STR, b=STR), obj(("a",), a=STR))
    assert len(problems) == 1
    assert "b" in problems[0]
    assert "removed" in problems[0]


def test_renamed_property_is_breaking() -> None:
    problems = breaking_changes(obj(("amount",), amount=STR), obj(("total",), total=STR))
    assert any(p.startswith("amount:") and "removed" in p for p in problems)
    assert any(p.startswith("total:") and "required" in p for p in problems)


def test_retyped_property_is_breaking() -> None:
    problems = breaking_changes(obj(("a",), a=STR), obj(("a",), a=INT))
    assert problems == ["a: type changed: string → integer"]


def test_integer_widened_to_number_is_compatible() -> None:
    assert breaking_changes(obj(("a",), a=INT), obj(("a",), a={"type": "number"})) == []


def test_new_required_property_is_breaking() -> None:
    problems = breaking_changes(obj(("a",), a=STR), obj(("a", "b"), a=STR, b=STR))
    assert problems == ["b: new required property"]


def test_optional_property_made_required_is_breaking() -> None:
    problems = breaking_changes(obj((), a=STR), obj(("a",), a=STR))
    assert problems == ["a: optional property became required"]


def test_added_optional_property_is_compatible() -> None:
    assert breaking_changes(obj(("a",), a=STR), obj(("a",), a=STR, b=NULLABLE_STR)) == []


def test_relaxed_required_is_compatible() -> None:
    assert breaking_changes(obj(("a", "b"), a=STR, b=STR), obj(("a",), a=STR, b=STR)) == []


def test_format_change_is_breaking() -> None:
    old = obj(("at",), at={"type": "string", "format": "date-time"})
    new = obj(("at",), at={"type": "string", "format": "date"})
    problems = breaking_changes(old, new)
    assert problems == ["at: format changed: date-time → date"]
    added = breaking_changes(obj(("at",), at=STR), old)
    assert added == ["at: format changed: none → date-time"]


def test_dropping_a_format_is_compatible() -> None:
    old = obj(("at",), at={"type": "string", "format": "date-time"})
    assert breaking_changes(old, obj(("at",), at=STR)) == []


def test_pattern_change_is_breaking() -> None:
    old = obj(("amount",), amount={"type": "string", "pattern": r"^\d+$"})
    new = obj(("amount",), amount={"type": "string", "pattern": r"^\d+\.\d\d$"})
    problems = breaking_changes(old, new)
    assert len(problems) == 1
    assert problems[0].startswith("amount: pattern changed")


def test_enum_value_removed_is_breaking() -> None:
    old = obj(("outcome",), outcome={"type": "string", "enum": ["won", "lost"]})
    new = obj(("outcome",), outcome={"type": "string", "enum": ["won"]})
    assert breaking_changes(old, new) == ["outcome: enum values removed: 'lost'"]


def test_enum_value_added_is_compatible() -> None:
    old = obj(("outcome",), outcome={"type": "string", "enum": ["won", "lost"]})
    new = obj(("outcome",), outcome={"type": "string", "enum": ["won", "lost", "void"]})
    assert breaking_changes(old, new) == []


def test_nullable_widening_is_compatible() -> None:
    assert breaking_changes(obj(("a",), a=STR), obj(("a",), a=NULLABLE_STR)) == []


def test_nullable_made_non_nullable_is_breaking() -> None:
    problems = breaking_changes(obj(("a",), a=NULLABLE_STR), obj(("a",), a=STR))
    assert problems == ["a: was nullable, is non-nullable now"]


def test_additional_properties_tightened_is_breaking() -> None:
    old = {"type": "object", "properties": {"a": STR}}
    new = obj((), a=STR)
    problems = breaking_changes(old, new)
    assert len(problems) == 1
    assert "additionalProperties" in problems[0]


def test_nested_change_through_refs_names_the_path() -> None:
    def schema(price: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {
                "Line": obj(("name", "price"), name=STR, price=price),
                "Proposal": obj(("lines",), lines={"type": "array", "items": STR}),
            },
            **obj(
                ("line", "maybe"),
                line={"$ref": "#/$defs/Line"},
                maybe={"anyOf": [{"$ref": "#/$defs/Line"}, {"type": "null"}]},
            ),
        }

    problems = breaking_changes(schema(STR), schema({"type": "number"}))
    assert problems == [
        "line.price: type changed: string → number",
        "maybe.price: type changed: string → number",
    ]


def test_array_item_change_names_the_path() -> None:
    def schema(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "$defs": {"Line": item},
            **obj(("lines",), lines={"type": "array", "items": {"$ref": "#/$defs/Line"}}),
        }

    old = schema(obj(("name", "price"), name=STR, price=STR))
    renamed = schema(obj(("name", "cost"), name=STR, cost=STR))
    problems = breaking_changes(old, renamed)
    assert "lines[].price: property removed (or renamed)" in problems
    assert "lines[].cost: new required property" in problems
    tags_old = obj(("tags",), tags={"type": "array", "items": STR})
    tags_new = obj(("tags",), tags={"type": "array", "items": INT})
    assert breaking_changes(tags_old, tags_new) == ["tags[]: type changed: string → integer"]


def test_map_values_are_compared() -> None:
    old = obj(
        ("changes",), changes={"type": "object", "additionalProperties": obj(("old",), old={})}
    )
    new = obj(("changes",), changes={"type": "object", "additionalProperties": obj((), new={})})
    problems = breaking_changes(old, new)
    assert "changes.*.old: property removed (or renamed)" in problems


def test_real_version_bump_is_reported_as_breaking() -> None:
    """LeadCreated v2 could only be a new version: it adds a required field."""
    v1 = published_schema(ALL_VERSIONS[("LeadCreated", 1)])
    v2 = published_schema(ALL_VERSIONS[("LeadCreated", 2)])
    assert breaking_changes(v1, v2) == ["currency: new required property"]


# --- the committed contract -------------------------------------------------------------


def test_committed_schemas_are_current_and_compatible() -> None:
    assert check_published(PUBLISHED) == []


def test_every_published_version_has_a_committed_file() -> None:
    for name, version in ALL_VERSIONS:
        assert (PUBLISHED / name / f"v{version}.json").is_file(), (name, version)
    assert (PUBLISHED / "envelope" / "v1.json").is_file()


def copy_published(tmp_path: Path) -> Path:
    copy = tmp_path / "published"
    shutil.copytree(PUBLISHED, copy)
    return copy


def edit(path: Path, change: Any) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    change(schema)
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_a_breaking_change_to_a_committed_version_is_reported(tmp_path: Path) -> None:
    """The committed v2 has a required field the model no longer declares (as if the model
    had dropped or renamed it)."""
    directory = copy_published(tmp_path)

    def add_region(schema: dict[str, Any]) -> None:
        schema["properties"]["region"] = {"type": "string"}
        schema["required"].append("region")

    edit(directory / "LeadCreated" / "v2.json", add_region)
    problems = check_published(directory)
    assert problems
    assert all(p.startswith("breaking: LeadCreated v2: ") for p in problems)
    assert any("region" in p and "removed" in p for p in problems)


def test_a_narrowed_committed_type_is_reported(tmp_path: Path) -> None:
    directory = copy_published(tmp_path)

    def nullable_amount(schema: dict[str, Any]) -> None:
        schema["properties"]["amount"] = {
            "anyOf": [schema["properties"]["amount"], {"type": "null"}]
        }

    edit(directory / "DealCreated" / "v1.json", nullable_amount)
    assert check_published(directory) == [
        "breaking: DealCreated v1: amount: was nullable, is non-nullable now (publish the change "
        "as v2)"
    ]


def test_a_compatible_difference_is_stale(tmp_path: Path) -> None:
    directory = copy_published(tmp_path)
    edit(directory / "DealClosed" / "v1.json", lambda s: s.update(description="old words"))
    problems = check_published(directory)
    assert len(problems) == 1
    assert problems[0].startswith("stale: DealClosed v1:")
    assert "run `leadledger schemas export`" in problems[0]
    write_published(directory)
    assert check_published(directory) == []


def test_missing_and_orphaned_files_are_reported(tmp_path: Path) -> None:
    directory = copy_published(tmp_path)
    (directory / "LeadCreated" / "v1.json").unlink()
    (directory / "LeadVanished").mkdir()
    (directory / "LeadVanished" / "v1.json").write_text("{}\n", encoding="utf-8")
    problems = check_published(directory)
    assert len(problems) == 2
    assert any(p.startswith("missing: LeadCreated v1 has no committed file") for p in problems)
    assert any(p.startswith("missing: LeadVanished v1 is committed") for p in problems)


def test_write_published_writes_every_version_and_the_envelope(tmp_path: Path) -> None:
    paths = write_published(tmp_path)
    assert len(paths) == len(ALL_VERSIONS) + 1
    assert tmp_path / "envelope" / "v1.json" in paths
    text = (tmp_path / "LeadCreated" / "v2.json").read_text(encoding="utf-8")
    assert text.endswith("}\n")
    schema = json.loads(text)
    assert schema["$id"] == "https://leadledger.example/schemas/events/LeadCreated/v2.json"
    assert schema["x-event-type"] == "LeadCreated"
    assert schema["x-schema-version"] == 2
    assert schema["x-aggregate-type"] == "lead"
    assert list(schema) == sorted(schema)
    assert check_published(tmp_path) == []


def test_committed_files_are_valid_json_schemas() -> None:
    for path in sorted(PUBLISHED.glob("*/v*.json")):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


# --- the registry covers the domain -----------------------------------------------------


def test_every_domain_event_type_is_published_in_its_current_version() -> None:
    for cls in EVENT_CLASSES:
        published = CURRENT.get(cls.__name__)
        assert published is not None, f"{cls.__name__} has no public schema"
        assert published.version == cls.schema_version, cls.__name__
        for version in range(1, cls.schema_version + 1):
            assert (cls.__name__, version) in ALL_VERSIONS, (cls.__name__, version)
    assert set(CURRENT) == {cls.__name__ for cls in EVENT_CLASSES}
    assert ("LeadCreated", 1) in ALL_VERSIONS
    assert CURRENT["LeadCreated"].version == 4


def test_aggregate_types_and_topics() -> None:
    assert tuple(sorted(set(AGGREGATE_TYPES))) == AGGREGATE_TYPES
    assert set(AGGREGATE_TYPES) >= {
        "lead",
        "company",
        "deal",
        "handoff",
        "contractor",
        "project",
        "billing",
    }
    for t in ALL_VERSIONS.values():
        assert t.aggregate_type in AGGREGATE_TYPES
        assert t.aggregate_type == CURRENT[t.name].aggregate_type
    assert topic_for("lead") == "leadledger.lead"
    assert topic_for("person_day", "acme") == "acme.person_day"
    assert CURRENT["RevenueBooked"].aggregate_type == "revenue_ledger"
    assert CURRENT["PersonDayHoursBooked"].aggregate_type == "person_day"


def test_published_fields_and_currency() -> None:
    assert "currency" in CURRENT["LeadCreated"].fields
    assert "currency" not in ALL_VERSIONS[("LeadCreated", 1)].fields
    assert isinstance(CURRENT["LeadCreated"].fields, frozenset)


def _non_meta_fields(cls: type[DomainEvent]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.name not in META_KEYS]


def _accepts_null(schema: dict[str, Any]) -> bool:
    return any(member.get("type") == "null" for member in schema.get("anyOf", ()))


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
def test_public_model_mirrors_the_domain_class(cls: type[DomainEvent]) -> None:
    """Same fields (less the sensitive ones), same nullability, required unless the domain
    has a default (events stored before such a field existed lack it)."""
    published = CURRENT[cls.__name__]
    schema = published_schema(published)
    hints = typing.get_type_hints(cls)
    fields = _non_meta_fields(cls)
    assert published.fields == {f.name for f in fields} - cls.sensitive_fields
    for f in fields:
        if f.name in cls.sensitive_fields:
            continue
        nullable = type(None) in get_args(hints[f.name])
        assert _accepts_null(schema["properties"][f.name]) == nullable, f.name
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        assert (f.name in schema.get("required", ())) == (not has_default), f.name


def leaked_sensitive_fields(
    classes: list[type[DomainEvent]], published: dict[tuple[str, int], PublishedEventType]
) -> list[str]:
    """Public fields that some version of an event type declares although the domain class
    marks them sensitive."""
    by_name = {cls.__name__: cls for cls in classes}
    return [
        f"{t.name} v{t.version}: {field}"
        for t in published.values()
        for field in sorted(t.fields & by_name[t.name].sensitive_fields)
    ]


def test_no_public_model_declares_a_sensitive_field() -> None:
    assert leaked_sensitive_fields(EVENT_CLASSES, ALL_VERSIONS) == []


def test_the_sensitive_field_check_would_catch_a_leak() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class LeadCreated(DomainEvent):
        sensitive_fields: typing.ClassVar[frozenset[str]] = frozenset({"description"})

    assert leaked_sensitive_fields(
        [LeadCreated], {key: t for key, t in ALL_VERSIONS.items() if t.name == "LeadCreated"}
    ) == [
        "LeadCreated v1: description",
        "LeadCreated v2: description",
        "LeadCreated v3: description",
        "LeadCreated v4: description",
    ]


def test_public_literals_match_the_domain() -> None:
    assert set(get_args(Outcome)) == {o.value for o in LeadOutcome}
    assert get_args(HealthLevel) == HEALTH_LEVELS
    assert set(get_args(HandoffStatus)) == set(HANDOFF_STATUSES)


# --- the public schemas accept everything the domain stores ------------------------------

HANDOFF_STATUSES = ("open", "in_work", "ready", "done", "rejected", "cancelled")
"""What ``aggregates.handoff.HandoffRequest.status`` can return."""

_JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10)
CARD_CHANGES = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.fixed_dictionaries({"old": _JSON_SCALARS, "new": _JSON_SCALARS}),
    max_size=3,
)
"""``{field: {"old": value, "new": value}}`` with JSON values, as the deciders write it."""

FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "currency": st.sampled_from(["RUB", "EUR", "USD", "KZT"]),
    "month": st.builds(
        lambda y, m: f"{y:04d}-{m:02d}", st.integers(2000, 2100), st.integers(1, 12)
    ),
    "outcome": st.sampled_from([o.value for o in LeadOutcome]),
    "level": st.sampled_from(HEALTH_LEVELS),
    "changes": CARD_CHANGES,
    "DealHandoffNoted.status": st.sampled_from(HANDOFF_STATUSES),
    "LeadSensitiveInfoViewed.outcome": st.sampled_from(["shown", "erased", "empty"]),
    "UserRegistered.role": st.sampled_from([r.value for r in ROLES]),
    "StatusLimitSet.kind": st.sampled_from(["lead", "deal", "project"]),
    "LeadImported.status": st.sampled_from(["open", "paused", "won", "lost", "non_quality"]),
    "DealImported.status": st.sampled_from(["open", "won", "lost"]),
    "ImportMappingSaved.columns": st.dictionaries(
        st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=3
    ),
    "ContactIdentifierClaimed.kind": st.sampled_from(["phone", "email"]),
    "ContactIdentifierReleased.kind": st.sampled_from(["phone", "email"]),
    "DirectoryEntryLinked.target": st.sampled_from(["lead", "project"]),
    "DirectoryEntryUnlinked.target": st.sampled_from(["lead", "project"]),
    "UserChanged.changes": st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(min_size=1, max_size=10),
            "role": st.sampled_from([r.value for r in ROLES]),
            "department": st.none() | st.text(max_size=10),
            "region": st.none() | st.text(max_size=10),
            "active": st.booleans(),
        },
    ),
}
"""Fields whose domain type is wider than what the deciders ever store in them."""


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(arg) for arg in typing.get_args(tp)))
    if tp is type(None):
        return st.none()
    if origin is tuple:
        return st.lists(strategy_for(typing.get_args(tp)[0]), max_size=3).map(tuple)
    if origin is list:
        return st.lists(strategy_for(typing.get_args(tp)[0]), max_size=3)
    if origin is dict:
        key, value = typing.get_args(tp)
        return st.dictionaries(strategy_for(key), strategy_for(value), max_size=3)
    if tp is Decimal:
        return st.decimals(
            min_value=Decimal("-1e12"),
            max_value=Decimal("1e12"),
            places=2,
            allow_nan=False,
            allow_infinity=False,
        )
    if tp is datetime:
        return st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        )
    if tp is date:
        return st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
    if tp is UUID:
        return st.uuids()
    if tp is str:
        return st.text(max_size=20)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(min_value=-(2**31), max_value=2**31)
    if tp is float:
        return st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return st.sampled_from(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return dataclass_strategy(tp)
    raise NotImplementedError(f"no strategy for {tp!r}")


def dataclass_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        special = f"{cls.__name__}.{f.name}"
        if special in FIELD_STRATEGIES:
            kwargs[f.name] = FIELD_STRATEGIES[special]
        elif f.name in FIELD_STRATEGIES:
            kwargs[f.name] = FIELD_STRATEGIES[f.name]
        else:
            kwargs[f.name] = strategy_for(hints[f.name])
    return st.builds(cls, **kwargs)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


COMMITTED_VALIDATORS = {
    key: _validator(json.loads((PUBLISHED / key[0] / f"v{key[1]}.json").read_text("utf-8")))
    for key in ALL_VERSIONS
}
EVENT_STRATEGIES = {cls.__name__: dataclass_strategy(cls) for cls in EVENT_CLASSES}


def test_format_checking_covers_the_wire_formats() -> None:
    checkers = jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers
    assert {"date-time", "date", "uuid"} <= set(checkers)
    validator = COMMITTED_VALIDATORS[("HoursLogged", 1)]
    good = {
        "entry_id": "6f1c5a52-1d0e-4c55-9a37-5e2b8f4d0c11",
        "person": "p",
        "task_id": None,
        "day": "2026-01-05",
        "hours": "7.50",
    }
    assert validator.is_valid(good)
    assert not validator.is_valid(good | {"day": "05.01.2026"})
    assert not validator.is_valid(good | {"entry_id": "nope"})
    assert not validator.is_valid(good | {"hours": 7.5})
    assert not validator.is_valid(good | {"extra": 1})


def wire_payload(codec: EventCodec, event: DomainEvent) -> dict[str, Any]:
    """The ``data`` the relay publishes: the stored JSON less the meta keys."""
    stored: dict[str, Any] = orjson.loads(codec.encode(event))
    return {k: v for k, v in stored.items() if k not in WIRE_DROPPED}


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_public_schema_accepts_what_the_domain_stores(
    cls: type[DomainEvent], data: st.DataObject
) -> None:
    event = data.draw(EVENT_STRATEGIES[cls.__name__])
    payload = wire_payload(CODEC, event)
    published = CURRENT[cls.__name__]
    public = {k: v for k, v in payload.items() if k in published.fields}
    assert set(payload) - cls.sensitive_fields == set(public)
    published.model.model_validate(public)
    errors = list(COMMITTED_VALIDATORS[(published.name, published.version)].iter_errors(public))
    assert errors == [], [e.message for e in errors]
    # an older stored version of the event, upcast, is published as the current version
    for version in range(1, published.version):
        old = ALL_VERSIONS[(published.name, version)]
        stored = {k: v for k, v in payload.items() if k in old.fields}
        old.model.model_validate(stored)
        assert COMMITTED_VALIDATORS[(old.name, version)].is_valid(stored)
        upcast = CODEC.upcast(cls.__name__, stored | {"schema_version": version})
        published.model.model_validate({k: v for k, v in upcast.items() if k in published.fields})


def test_envelope_model_accepts_a_published_envelope() -> None:
    envelope = {
        "event_id": "6f1c5a52-1d0e-4c55-9a37-5e2b8f4d0c11",
        "type": "LeadPaused",
        "schema_version": 1,
        "aggregate_type": "lead",
        "aggregate_id": "2f6c8a1e-5b3d-4e7f-a9c0-d4e6f8b0a2c3",
        "aggregate_version": 3,
        "position": 123,
        "occurred_at": "2026-01-05T09:00:00+00:00",
        "actor": "anna.sales",
        "command_id": "8b1d5e3f-2c4a-4f6b-9e7d-1a0c3b5d7f92",
        "correlation_id": None,
        "data": {"reason": "client on holiday"},
    }
    EventEnvelope.model_validate(envelope)
    validator = _validator(json.loads((PUBLISHED / "envelope" / "v1.json").read_text("utf-8")))
    assert validator.is_valid(cast(Any, envelope))
    assert not validator.is_valid(cast(Any, envelope | {"occurred_at": "2026-01-05T09:00:00"}))
    CURRENT["LeadPaused"].model.model_validate(envelope["data"])


# --- AsyncAPI ---------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), ref
        assert part in node, ref
        node = node[part]
    return node


def test_asyncapi_document() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "LeadLedger events"
    assert "at least once" in document["info"]["description"].lower()
    assert document["servers"] == {
        "production": {
            "host": "kafka:9092",
            "protocol": "kafka",
            "description": "Kafka cluster (production)",
        }
    }
    channels = document["channels"]
    assert sorted(channels) == sorted(AGGREGATE_TYPES)
    assert {c["address"] for c in channels.values()} == {topic_for(a) for a in AGGREGATE_TYPES}
    messages = document["components"]["messages"]
    assert set(messages) == set(CURRENT)
    for name, t in CURRENT.items():
        assert name in channels[t.aggregate_type]["messages"]
        message = messages[name]
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        payload = _resolve(document, message["payload"]["$ref"])
        data = payload["allOf"][1]["properties"]["data"]
        assert _resolve(document, data["$ref"])["title"] == t.model.__name__
        assert payload["allOf"][1]["properties"]["schema_version"] == {"const": t.version}
    operations = document["operations"]
    assert len(operations) == len(channels)
    for operation in operations.values():
        assert operation["action"] == "send"
        channel = _resolve(document, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
        assert len(operation["messages"]) == len(channel["messages"])
    for ref in _refs(document):
        _resolve(document, ref)
    assert json.loads(json.dumps(document)) == document


def test_asyncapi_document_takes_prefix_and_servers() -> None:
    document = asyncapi_document("acme", {"staging": "kafka-staging:9092", "prod": "k:9093"})
    assert set(document["servers"]) == {"staging", "prod"}
    assert document["servers"]["prod"]["host"] == "k:9093"
    assert document["channels"]["lead"]["address"] == "acme.lead"


def test_asyncapi_schemas_validate_an_envelope() -> None:
    """The message payload schema (envelope + data) checks a real published envelope."""
    document = asyncapi_document()
    schema = {
        "$ref": "#/components/schemas/LeadPausedEnvelope",
        "components": document["components"],
    }
    validator = jsonschema.Draft7Validator(schema)
    envelope = {
        "event_id": "6f1c5a52-1d0e-4c55-9a37-5e2b8f4d0c11",
        "type": "LeadPaused",
        "schema_version": 1,
        "aggregate_type": "lead",
        "aggregate_id": "2f6c8a1e-5b3d-4e7f-a9c0-d4e6f8b0a2c3",
        "aggregate_version": 3,
        "position": 123,
        "occurred_at": "2026-01-05T09:00:00+00:00",
        "actor": "anna.sales",
        "command_id": "8b1d5e3f-2c4a-4f6b-9e7d-1a0c3b5d7f92",
        "correlation_id": None,
        "data": {"reason": "client on holiday"},
    }
    assert validator.is_valid(envelope)
    assert not validator.is_valid(envelope | {"data": {"reason": 5}})
    assert not validator.is_valid(envelope | {"type": "LeadResumed"})

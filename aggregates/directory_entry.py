"""Shared directories (seed 000): courts, opponents, consultants, lawyers, experts and
signatories — one event-sourced record, the **directory entry** of a kind.

The kinds and their fields are configuration (``leadledger/config/directories.toml``,
read into a :class:`DirectoryCatalog`): adding a kind is adding a table of fields. A
kind names its fields (``text``, ``long`` text, ``phone`` or ``email``, required or
not), the field that titles an entry, and the roles an entry may be linked with to a
lead or a project (a court that sent a lead, a signatory of a project).

Rules:
- every required field is filled, no field the kind does not declare is given, and each
  value fits its type (phones and e-mails normalised as a contact's are);
- an edit changes something;
- a link names a target type and a role the kind declares; the same (target, role) link
  is made once, and only an existing link is removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.contact import normalise_email, normalise_phone
from aggregates.errors import InvalidValue, RuleViolation

FIELD_TYPES = ("text", "long", "phone", "email")
TARGETS = ("lead", "project")
MAX_SHORT_TEXT = 500
MAX_LINKS = 10_000


# --- configuration -----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    id: str
    type: str = "text"
    required: bool = False
    name: str = ""
    """Shown to people (translated as a configured name); the id when not configured."""


@dataclass(frozen=True)
class DirectoryKind:
    id: str
    fields: tuple[FieldSpec, ...]
    title_field: str
    roles: Mapping[str, tuple[str, ...]]
    """Target type (``lead``, ``project``) → the roles an entry is linked with."""
    name: str = ""
    """The directory's name shown to people (its id when not configured)."""

    def field(self, field_id: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.id == field_id), None)

    @property
    def field_ids(self) -> tuple[str, ...]:
        return tuple(f.id for f in self.fields)


def _config_error(where: str, message: str) -> ValueError:
    return ValueError(f"directories configuration: {where}: {message}")


def _kind_from_config(kind_id: str, raw: Any) -> DirectoryKind:
    if not isinstance(raw, dict):
        raise _config_error(kind_id, "must be a table")
    raw_fields = raw.get("fields")
    if not isinstance(raw_fields, dict) or not raw_fields:
        raise _config_error(kind_id, "needs a [fields] table naming at least one field")
    fields: list[FieldSpec] = []
    for field_id, spec in raw_fields.items():
        spec = spec if isinstance(spec, dict) else {}
        field_type = str(spec.get("type", "text"))
        if field_type not in FIELD_TYPES:
            raise _config_error(f"{kind_id}.{field_id}", f"type must be one of {FIELD_TYPES}")
        name = str(spec.get("name", field_id))
        fields.append(FieldSpec(field_id, field_type, bool(spec.get("required", False)), name))
    title = str(raw.get("title_field", fields[0].id))
    if title not in raw_fields:
        raise _config_error(kind_id, f"title_field '{title}' is not one of its fields")
    raw_roles = raw.get("roles", {})
    if not isinstance(raw_roles, dict):
        raise _config_error(kind_id, "roles must be a table of target = [roles]")
    roles: dict[str, tuple[str, ...]] = {}
    for target, names in raw_roles.items():
        if target not in TARGETS:
            raise _config_error(f"{kind_id}.roles", f"target must be one of {TARGETS}")
        if not isinstance(names, list) or not names:
            raise _config_error(f"{kind_id}.roles.{target}", "must list at least one role")
        roles[target] = tuple(str(n) for n in names)
    return DirectoryKind(kind_id, tuple(fields), title, roles, str(raw.get("name", kind_id)))


class DirectoryCatalog:
    """Every configured kind of directory, in the configuration's order."""

    def __init__(self, kinds: Sequence[DirectoryKind]) -> None:
        self.kinds: dict[str, DirectoryKind] = {k.id: k for k in kinds}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DirectoryCatalog:
        raw = config.get("kinds")
        if not isinstance(raw, dict) or not raw:
            raise _config_error("kinds", "name at least one kind of directory")
        return cls([_kind_from_config(k, v) for k, v in raw.items()])

    def get(self, kind_id: str) -> DirectoryKind | None:
        return self.kinds.get(kind_id)

    def __iter__(self) -> Any:
        return iter(self.kinds.values())


# --- state, commands, events -------------------------------------------------------------

Link = tuple[str, UUID, str]
"""(target type, target id, role)."""


@dataclass(frozen=True)
class DirectoryEntry:
    entry_id: UUID
    kind: str
    version: int
    fields: dict[str, str | None]
    links: frozenset[Link]
    created_at: datetime
    created_by: str
    updated_at: datetime


@dataclass(frozen=True)
class RegisterEntry:
    entry_id: UUID
    fields: dict[str, Any]


@dataclass(frozen=True)
class UpdateEntry:
    """Only the fields present in ``changes`` are touched (null clears an optional one)."""

    changes: dict[str, Any]


@dataclass(frozen=True)
class LinkEntry:
    target: str
    target_id: UUID
    role: str


@dataclass(frozen=True)
class UnlinkEntry:
    target: str
    target_id: UUID
    role: str


@dataclass(frozen=True, kw_only=True)
class DirectoryEntryRegistered(DomainEvent):
    entry_id: UUID
    kind: str
    title: str
    """The value of the kind's title field."""
    fields: dict[str, str | None]


@dataclass(frozen=True, kw_only=True)
class DirectoryEntryUpdated(DomainEvent):
    """The entry's fields after the edit (all of them) and the ones that changed."""

    kind: str
    title: str
    fields: dict[str, str | None]
    changed: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DirectoryEntryLinked(DomainEvent):
    kind: str
    target: str
    target_id: UUID
    role: str


@dataclass(frozen=True, kw_only=True)
class DirectoryEntryUnlinked(DomainEvent):
    kind: str
    target: str
    target_id: UUID
    role: str


DIRECTORY_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    DirectoryEntryRegistered,
    DirectoryEntryUpdated,
    DirectoryEntryLinked,
    DirectoryEntryUnlinked,
)


def _value(spec: FieldSpec, raw: Any) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if spec.required:
            raise InvalidValue(spec.id, f"'{spec.id}' is required")
        return None
    if not isinstance(raw, str):
        raise InvalidValue(spec.id, f"'{spec.id}' must be a string")
    match spec.type:
        case "phone":
            return normalise_phone(spec.id, raw)
        case "email":
            return normalise_email(spec.id, raw)
        case "long":
            return values.text(spec.id, raw, required=spec.required)
    value = values.text(spec.id, raw, required=spec.required)
    if value is not None and len(value) > MAX_SHORT_TEXT:
        raise InvalidValue(spec.id, f"'{spec.id}' is longer than {MAX_SHORT_TEXT} characters")
    return value


def _check_names(kind: DirectoryKind, given: Mapping[str, Any]) -> None:
    unknown = [f for f in given if kind.field(f) is None]
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidValue(
            field,
            f"'{field}' is not a field of the {kind.id} directory "
            f"(fields: {', '.join(kind.field_ids)})",
        )


def _title(kind: DirectoryKind, fields: Mapping[str, str | None]) -> str:
    """The title field's value (a kind whose title field is optional: the first field set)."""
    return fields.get(kind.title_field) or next((v for v in fields.values() if v), "")


def register(
    kind: DirectoryKind, command: RegisterEntry, meta: CommandMeta
) -> DirectoryEntryRegistered:
    _check_names(kind, command.fields)
    fields = {spec.id: _value(spec, command.fields.get(spec.id)) for spec in kind.fields}
    return DirectoryEntryRegistered(
        **meta.event_fields(),
        entry_id=command.entry_id,
        kind=kind.id,
        title=_title(kind, fields),
        fields=fields,
    )


def update(
    kind: DirectoryKind, entry: DirectoryEntry, command: UpdateEntry, meta: CommandMeta
) -> DirectoryEntryUpdated:
    if not command.changes:
        raise InvalidValue("body", "name at least one field to change")
    _check_names(kind, command.changes)
    fields = {
        spec.id: _value(spec, command.changes[spec.id])
        if spec.id in command.changes
        else entry.fields.get(spec.id)
        for spec in kind.fields
    }
    changed = tuple(f for f in kind.field_ids if fields[f] != entry.fields.get(f))
    if not changed:
        raise RuleViolation("no_change", "the entry already has these values")
    return DirectoryEntryUpdated(
        **meta.event_fields(),
        kind=kind.id,
        title=_title(kind, fields),
        fields=fields,
        changed=changed,
    )


def _role(kind: DirectoryKind, target: str, role: str) -> None:
    roles = kind.roles.get(target)
    if roles is None:
        allowed = ", ".join(kind.roles) or "nothing"
        raise InvalidValue(
            "target", f"a {kind.id} entry is not linked to a {target} (it links to: {allowed})"
        )
    if role not in roles:
        raise InvalidValue(
            "role", f"a {kind.id} is linked to a {target} as: {', '.join(roles)} (not '{role}')"
        )


def link(
    kind: DirectoryKind, entry: DirectoryEntry, command: LinkEntry, meta: CommandMeta
) -> DirectoryEntryLinked:
    _role(kind, command.target, command.role)
    key = (command.target, command.target_id, command.role)
    if key in entry.links:
        raise RuleViolation(
            "already_linked",
            f"the entry is already linked to {command.target} {command.target_id} "
            f"as {command.role}",
        )
    if len(entry.links) >= MAX_LINKS:
        raise RuleViolation("too_many_links", f"an entry holds at most {MAX_LINKS} links")
    return DirectoryEntryLinked(
        **meta.event_fields(),
        kind=kind.id,
        target=command.target,
        target_id=command.target_id,
        role=command.role,
    )


def unlink(
    kind: DirectoryKind, entry: DirectoryEntry, command: UnlinkEntry, meta: CommandMeta
) -> DirectoryEntryUnlinked:
    key = (command.target, command.target_id, command.role)
    if key not in entry.links:
        raise RuleViolation(
            "not_linked",
            f"the entry is not linked to {command.target} {command.target_id} as {command.role}",
        )
    return DirectoryEntryUnlinked(
        **meta.event_fields(),
        kind=kind.id,
        target=command.target,
        target_id=command.target_id,
        role=command.role,
    )


def evolve(entry: DirectoryEntry | None, event: DomainEvent) -> DirectoryEntry:
    if entry is None:
        if not isinstance(event, DirectoryEntryRegistered):
            raise ValueError(
                f"a directory entry's stream starts with DirectoryEntryRegistered, not {event.type}"
            )
        return DirectoryEntry(
            entry_id=event.entry_id,
            kind=event.kind,
            version=1,
            fields=dict(event.fields),
            links=frozenset(),
            created_at=event.at,
            created_by=event.actor,
            updated_at=event.at,
        )
    changes: dict[str, Any]
    match event:
        case DirectoryEntryUpdated():
            changes = {"fields": dict(event.fields)}
        case DirectoryEntryLinked():
            changes = {"links": entry.links | {(event.target, event.target_id, event.role)}}
        case DirectoryEntryUnlinked():
            changes = {"links": entry.links - {(event.target, event.target_id, event.role)}}
        case _:
            raise ValueError(f"not a directory entry event: {event.type}")
    return replace(entry, version=entry.version + 1, updated_at=event.at, **changes)


def fold(events: Sequence[DomainEvent]) -> DirectoryEntry | None:
    entry: DirectoryEntry | None = None
    for event in events:
        entry = evolve(entry, event)
    return entry

"""A lead's sensitive information (free text and named fields), sealed per data subject.

The section lives in its own stream beside the lead's, so the lead's read models never
see it. Its events carry only a sealed token (AES-GCM under the data subject's key, bound
to the lead): the plaintext is never stored, published or logged. Erasing the data
subject destroys its key, which leaves every sealed token of it, in old events and in
backups alike, unreadable; the events themselves stay and replay.

Every read of the section is recorded as an event of its own (who, when, which lead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid5

from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue

SENSITIVE_NAMESPACE = UUID("9e51c3d2-70a4-4f0b-b8d6-2c1f5a9e7b43")
SUBJECT_NAMESPACE = UUID("c4a8e2f6-13b9-4d7e-a5c0-6f2e8b1d9a57")
MAX_NOTES = 20_000
MAX_FIELDS = 50
MAX_FIELD_NAME = 100
MAX_FIELD_VALUE = 2_000


def section_stream_id(lead_id: UUID) -> UUID:
    return uuid5(SENSITIVE_NAMESPACE, str(lead_id))


def subject_stream_id(subject_id: str) -> UUID:
    return uuid5(SUBJECT_NAMESPACE, subject_id)


def subject_of(lead_id: UUID, company_id: str | None) -> str:
    """The data subject of a lead's sensitive information: its client company when the
    lead names one, else the person behind the lead."""
    return f"company:{company_id}" if company_id else f"lead:{lead_id}"


def seal_context(lead_id: UUID) -> bytes:
    """Associated data of a sealed section: a token cannot be moved to another lead."""
    return f"leadledger:sensitive:{lead_id}".encode()


@dataclass(frozen=True)
class SensitiveInfo:
    """What a reader sees: the plaintext section."""

    notes: str
    fields: dict[str, str]


def clean(notes: Any, fields: Any) -> SensitiveInfo:
    if notes is None:
        notes = ""
    if not isinstance(notes, str):
        raise InvalidValue("notes", "notes must be text")
    if len(notes) > MAX_NOTES:
        raise InvalidValue("notes", f"notes must be at most {MAX_NOTES} characters")
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise InvalidValue("fields", "fields must be an object of named text values")
    if len(fields) > MAX_FIELDS:
        raise InvalidValue("fields", f"at most {MAX_FIELDS} named fields")
    out: dict[str, str] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_FIELD_NAME:
            raise InvalidValue("fields", f"field names are 1-{MAX_FIELD_NAME} characters")
        if not isinstance(value, str) or len(value) > MAX_FIELD_VALUE:
            raise InvalidValue(
                f"fields.{name}", f"values are text of at most {MAX_FIELD_VALUE} characters"
            )
        out[name.strip()] = value
    return SensitiveInfo(notes, out)


@dataclass(frozen=True, kw_only=True)
class LeadSensitiveInfoSet(DomainEvent):
    """The section was replaced; ``sealed`` is the only place its content exists."""

    sensitive_fields: ClassVar[frozenset[str]] = frozenset({"sealed"})

    lead_id: UUID
    subject_id: str
    sealed: str


@dataclass(frozen=True, kw_only=True)
class LeadSensitiveInfoViewed(DomainEvent):
    """Someone read the section (recorded before they were shown it)."""

    lead_id: UUID
    subject_id: str
    outcome: str
    """``shown``, ``erased`` (the subject was erased) or ``empty`` (never set)."""


@dataclass(frozen=True, kw_only=True)
class DataSubjectErased(DomainEvent):
    """The subject's key was destroyed: its sealed information is unreadable for good."""

    subject_id: str
    keys_destroyed: bool


SENSITIVE_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    LeadSensitiveInfoSet,
    LeadSensitiveInfoViewed,
    DataSubjectErased,
)


@dataclass(frozen=True)
class Section:
    """The folded sensitive stream of a lead."""

    lead_id: UUID
    subject_id: str
    sealed: str
    version: int
    updated_at: datetime
    updated_by: str


def set_section(
    lead_id: UUID, subject_id: str, sealed: str, meta: CommandMeta
) -> LeadSensitiveInfoSet:
    return LeadSensitiveInfoSet(
        **meta.event_fields(), lead_id=lead_id, subject_id=subject_id, sealed=sealed
    )


def fold(events: list[DomainEvent]) -> Section | None:
    section: Section | None = None
    for version, event in enumerate(events, start=1):
        if isinstance(event, LeadSensitiveInfoSet):
            section = Section(
                event.lead_id, event.subject_id, event.sealed, version, event.at, event.actor
            )
    return section

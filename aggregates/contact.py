"""Contacts: the persons LeadLedger deals with (a private client, a company's employee).

A contact has a name, phones and e-mails (normalised, see :func:`normalise_phone` and
:func:`normalise_email`), a position, the client companies it belongs to and notes.

**No two contacts share a phone or an e-mail.** Every normalised phone and e-mail has a
claim stream of its own (:func:`claim_stream_id`); registering or editing a contact
appends the claims of its new phones and e-mails (and the releases of those it dropped)
in the same atomic write as the contact's own event. Two racing registrations of one
phone cannot both claim it: the loser decides again, sees the claim and is refused with
``likely_duplicate`` naming the contact that holds it.

**A private person's lead is repeat when an earlier lead named the same contact.** The
first lead naming a contact appends :class:`ContactFirstLeadNamed` on the contact's
first-lead stream (:func:`first_lead_stream_id`) together with the lead, exactly as a
company's first lead registers the company (``aggregates/company.py``): of two racing
first leads one is new, the other repeat. Since a phone or an e-mail belongs to one
contact at a time, "the same contact" is "the same normalised phone or e-mail".

Phones and e-mails are personal data: they are ``sensitive_fields`` of the events (never
published), and a claim stream's id is a name-based hash of the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid5

from aggregates import values
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation

CONTACT_NAMESPACE = UUID("0b7d4c1e-5a2f-4e83-9c61-d2f8a7b3e915")
MAX_PHONES = 10
MAX_EMAILS = 10
MAX_COMPANIES = 50
MAX_EMAIL = 254
MAX_SHORT_TEXT = 200
FIELDS = ("name", "phones", "emails", "position", "companies", "notes")

IdentifierKind = Literal["phone", "email"]


def claim_stream_id(kind: str, value: str) -> UUID:
    """The claim stream of one normalised phone or e-mail."""
    return uuid5(CONTACT_NAMESPACE, f"contact-{kind}:{value}")


def first_lead_stream_id(contact_id: UUID) -> UUID:
    """The stream whose first event is the first lead naming the contact."""
    return uuid5(CONTACT_NAMESPACE, f"contact-leads:{contact_id}")


# --- values -----------------------------------------------------------------------------

_PHONE_CHARACTERS = re.compile(r"^\+?[0-9 ()\-.]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def normalise_phone(field: str, raw: Any) -> str:
    """An E.164-like ``+<digits>``: a Russian ``8XXXXXXXXXX`` (or ``7…``, or ten national
    digits) becomes ``+7XXXXXXXXXX``; other numbers need their ``+`` country code.
    Spaces, dashes, dots and brackets are dropped."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidValue(field, f"'{field}' must be a phone number")
    text = raw.strip()
    if not _PHONE_CHARACTERS.match(text):
        raise InvalidValue(
            field, f"'{field}' may hold only digits, spaces, dashes, brackets and a leading +"
        )
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+"):
        number = digits
    elif len(digits) == 11 and digits[0] in "78":
        number = "7" + digits[1:]
    elif len(digits) == 10:
        number = "7" + digits
    else:
        raise InvalidValue(
            field,
            f"'{field}' must be a Russian number (8XXXXXXXXXX) or start with + and the "
            "country code",
        )
    if not 10 <= len(number) <= 15 or number[0] == "0":
        raise InvalidValue(field, f"'{field}' must have 10 to 15 digits with the country code")
    return "+" + number


def normalise_email(field: str, raw: Any) -> str:
    """Trimmed, lower-cased, and shaped like ``name@domain.tld``."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidValue(field, f"'{field}' must be an e-mail address")
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise InvalidValue(field, f"'{field}' is not an e-mail address (name@domain.tld)")
    return email


def _unique(field: str, raw: Any, limit: int, normalise: Any, what: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise InvalidValue(field, f"'{field}' must be a list")
    if len(raw) > limit:
        raise InvalidValue(field, f"at most {limit} {what}")
    checked: list[str] = []
    for index, item in enumerate(raw):
        value: str = normalise(f"{field}[{index}]", item)
        if value in checked:
            raise InvalidValue(f"{field}[{index}]", f"{what[:-1]} '{value}' appears twice")
        checked.append(value)
    return tuple(checked)


def phones(raw: Any, field: str = "phones") -> tuple[str, ...]:
    return _unique(field, raw, MAX_PHONES, normalise_phone, "phones")


def emails(raw: Any, field: str = "emails") -> tuple[str, ...]:
    return _unique(field, raw, MAX_EMAILS, normalise_email, "e-mails")


def _company(field: str, raw: Any) -> str:
    value = values.required_text(field, raw)
    if len(value) > MAX_SHORT_TEXT:
        raise InvalidValue(field, f"'{field}' is longer than {MAX_SHORT_TEXT} characters")
    return value


def companies(raw: Any) -> tuple[str, ...]:
    return _unique("companies", raw, MAX_COMPANIES, _company, "companies")


def _short(field: str, raw: Any, *, required: bool) -> str | None:
    value = values.text(field, raw, required=required)
    if value is not None and len(value) > MAX_SHORT_TEXT:
        raise InvalidValue(field, f"'{field}' is longer than {MAX_SHORT_TEXT} characters")
    return value


# --- state, commands, events -----------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    contact_id: UUID
    version: int
    name: str
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    position: str | None
    companies: tuple[str, ...]
    notes: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime

    def identifiers(self) -> frozenset[tuple[str, str]]:
        return identifiers(self.phones, self.emails)


def identifiers(phones: Sequence[str], emails: Sequence[str]) -> frozenset[tuple[str, str]]:
    return frozenset({("phone", p) for p in phones} | {("email", e) for e in emails})


@dataclass(frozen=True)
class RegisterContact:
    contact_id: UUID
    name: str
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    position: str | None = None
    companies: tuple[str, ...] = ()
    notes: str | None = None


@dataclass(frozen=True)
class UpdateContact:
    """Only the fields present in ``changes`` are touched (lists are replaced whole)."""

    changes: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ContactRegistered(DomainEvent):
    sensitive_fields: ClassVar[frozenset[str]] = frozenset({"phones", "emails"})

    contact_id: UUID
    name: str
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    position: str | None
    companies: tuple[str, ...]
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class ContactUpdated(DomainEvent):
    """The whole card after the edit."""

    sensitive_fields: ClassVar[frozenset[str]] = frozenset({"phones", "emails"})

    name: str
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    position: str | None
    companies: tuple[str, ...]
    notes: str | None


@dataclass(frozen=True, kw_only=True)
class ContactIdentifierClaimed(DomainEvent):
    """A phone or an e-mail became the contact's (on the value's claim stream)."""

    sensitive_fields: ClassVar[frozenset[str]] = frozenset({"value"})

    kind: str
    value: str
    contact_id: UUID


@dataclass(frozen=True, kw_only=True)
class ContactIdentifierReleased(DomainEvent):
    """The contact dropped the phone or e-mail; another contact may claim it now."""

    sensitive_fields: ClassVar[frozenset[str]] = frozenset({"value"})

    kind: str
    value: str
    contact_id: UUID


@dataclass(frozen=True, kw_only=True)
class ContactFirstLeadNamed(DomainEvent):
    """The first lead naming the contact; every later one naming it is a repeat."""

    contact_id: UUID
    first_lead_id: UUID


CONTACT_EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ContactRegistered,
    ContactUpdated,
    ContactIdentifierClaimed,
    ContactIdentifierReleased,
    ContactFirstLeadNamed,
)


def register(command: RegisterContact, meta: CommandMeta) -> ContactRegistered:
    return ContactRegistered(
        **meta.event_fields(),
        contact_id=command.contact_id,
        name=values.required_text("name", command.name),
        phones=phones(command.phones),
        emails=emails(command.emails),
        position=_short("position", command.position, required=False),
        companies=companies(command.companies),
        notes=values.text("notes", command.notes, required=False),
    )


def update(contact: Contact, command: UpdateContact, meta: CommandMeta) -> ContactUpdated:
    changes = command.changes
    if not changes:
        raise InvalidValue("body", "name at least one field to change")
    unknown = set(changes) - set(FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise InvalidValue(field, f"'{field}' is not a contact field that can be changed")
    name = values.required_text("name", changes.get("name", contact.name))
    new_phones = phones(changes["phones"]) if "phones" in changes else contact.phones
    new_emails = emails(changes["emails"]) if "emails" in changes else contact.emails
    position = _short("position", changes.get("position", contact.position), required=False)
    new_companies = companies(changes["companies"]) if "companies" in changes else contact.companies
    notes = values.text("notes", changes.get("notes", contact.notes), required=False)
    card = (name, new_phones, new_emails, position, new_companies, notes)
    if card == tuple(getattr(contact, f) for f in FIELDS):
        raise RuleViolation("no_change", "the contact already has these values")
    return ContactUpdated(
        **meta.event_fields(),
        name=name,
        phones=new_phones,
        emails=new_emails,
        position=position,
        companies=new_companies,
        notes=notes,
    )


def claim_owner(events: Sequence[DomainEvent]) -> UUID | None:
    """Who holds a phone or an e-mail, from its claim stream's events."""
    owner: UUID | None = None
    for event in events:
        if isinstance(event, ContactIdentifierClaimed):
            owner = event.contact_id
        elif isinstance(event, ContactIdentifierReleased):
            owner = None
    return owner


def claims(
    contact_id: UUID,
    before: frozenset[tuple[str, str]],
    after: frozenset[tuple[str, str]],
    owners: Mapping[tuple[str, str], UUID | None],
    meta: CommandMeta,
) -> list[ContactIdentifierClaimed | ContactIdentifierReleased]:
    """The claims of the phones and e-mails the contact gains (refused with
    ``likely_duplicate`` when another contact holds one) and the releases of those it
    drops. ``owners``: the current holder of every gained value."""
    events: list[ContactIdentifierClaimed | ContactIdentifierReleased] = []
    for kind, value in sorted(after - before):
        owner = owners.get((kind, value))
        if owner is not None and owner != contact_id:
            field = "phones" if kind == "phone" else "emails"
            raise RuleViolation(
                "likely_duplicate",
                f"contact {owner} already has the {'phone' if kind == 'phone' else 'e-mail'} "
                f"{value}: it is likely the same person",
                field=field,
                value=value,
                contact_id=str(owner),
            )
        if owner is None:
            events.append(
                ContactIdentifierClaimed(
                    **meta.event_fields(), kind=kind, value=value, contact_id=contact_id
                )
            )
    for kind, value in sorted(before - after):
        events.append(
            ContactIdentifierReleased(
                **meta.event_fields(), kind=kind, value=value, contact_id=contact_id
            )
        )
    return events


def name_first_lead(contact_id: UUID, lead_id: UUID, meta: CommandMeta) -> ContactFirstLeadNamed:
    return ContactFirstLeadNamed(
        **meta.event_fields(), contact_id=contact_id, first_lead_id=lead_id
    )


def evolve(contact: Contact | None, event: DomainEvent) -> Contact:
    if contact is None:
        if not isinstance(event, ContactRegistered):
            raise ValueError(f"a contact's stream starts with ContactRegistered, not {event.type}")
        return Contact(
            contact_id=event.contact_id,
            version=1,
            name=event.name,
            phones=tuple(event.phones),
            emails=tuple(event.emails),
            position=event.position,
            companies=tuple(event.companies),
            notes=event.notes,
            created_at=event.at,
            created_by=event.actor,
            updated_at=event.at,
        )
    if not isinstance(event, ContactUpdated):
        raise ValueError(f"not a contact event: {event.type}")
    return replace(
        contact,
        version=contact.version + 1,
        updated_at=event.at,
        name=event.name,
        phones=tuple(event.phones),
        emails=tuple(event.emails),
        position=event.position,
        companies=tuple(event.companies),
        notes=event.notes,
    )


def fold(events: Sequence[DomainEvent]) -> Contact | None:
    contact: Contact | None = None
    for event in events:
        contact = evolve(contact, event)
    return contact

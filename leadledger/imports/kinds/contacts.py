"""Importing contacts: one row, one person (name, phones, e-mails, position, the companies
it belongs to, notes), with the same rules as ``POST /contacts``.

Each row is decided by :func:`aggregates.contact.register` (phones and e-mails
normalised: a Russian ``8 (912) 345-67-89`` is ``+79123456789``, e-mails lower-cased) and
:func:`aggregates.contact.claims`, so **likely duplicates** are refused as by the
command: a row with a phone or e-mail another contact holds is a bad row naming that
contact, and so is a row with a phone or e-mail an earlier row of the file took (naming
that row).

A cell holds several phones or e-mails separated by ``;``, ``,`` or line breaks, and
several companies (their company ids) separated by ``;`` or line breaks (a company's
name may hold a comma); the export writes them joined by ``"; "``.

**The record's id** is the row's ``contact_id`` when given (an export from LeadLedger
carries it), else one derived from its first phone, else its first e-mail, else its name:
the same person imported twice is the same record, "already imported".
"""

# ruff: noqa: RUF001

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from aggregates import contact
from aggregates.base import CommandMeta, DomainEvent
from aggregates.errors import InvalidValue, RuleViolation
from event_store.bulk import existing_streams
from leadledger.imports.base import Field, NewEventSpec, RowRefused, Session, record_id

NAME = "contacts"
FIELDS: tuple[Field, ...] = (
    Field(
        "contact_id",
        aliases=("id", "contact id", "id контакта", "идентификатор"),
        help="The contact's id in LeadLedger (a UUID). Default: one derived from its "
        "first phone, else its first e-mail, else its name.",
    ),
    Field("name", required=True, aliases=("фио", "имя", "контакт", "ф.и.о.", "full name")),
    Field(
        "phones",
        aliases=("phone", "телефон", "телефоны", "тел", "мобильный"),
        help="Phones separated by ; or , (8XXXXXXXXXX or +<country code>...).",
    ),
    Field(
        "emails",
        aliases=("email", "e-mail", "e mail", "почта", "эл. почта", "электронная почта"),
        help="E-mails separated by ; or ,.",
    ),
    Field("position", aliases=("должность",)),
    Field(
        "companies",
        aliases=("company", "компания", "компании", "организация"),
        help="The companies' ids separated by ; (a company's tax id names it).",
    ),
    Field("notes", aliases=("примечание", "примечания", "комментарий", "заметки")),
)
LIST_SEPARATOR = "; "
_SPLIT_ANY = re.compile(r"[;,\n]+")
_SPLIT_LINES = re.compile(r"[;\n]+")


def split(values: dict[str, Any], field: str) -> tuple[str, ...]:
    """A list cell's items (see the module's docstring), blanks dropped."""
    raw = values.get(field)
    if raw is None:
        return ()
    pattern = _SPLIT_LINES if field == "companies" else _SPLIT_ANY
    return tuple(item.strip() for item in pattern.split(str(raw)) if item.strip())


def joined(items: Sequence[str] | None) -> str | None:
    """A list as its import cell."""
    return LIST_SEPARATOR.join(items) if items else None


def _refused(error: InvalidValue) -> RowRefused:
    return RowRefused(error.field.split("[")[0], error.message)


def identifiers_of(values: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The row's normalised phones and e-mails (RowRefused naming a bad one)."""
    try:
        return contact.phones(list(split(values, "phones"))), contact.emails(
            list(split(values, "emails"))
        )
    except InvalidValue as error:
        raise _refused(error) from None


def contact_key(values: dict[str, Any]) -> str:
    """The row's natural key (see the module's docstring)."""
    given = values.get("contact_id")
    if isinstance(given, str) and given.strip():
        try:
            return f"id:{UUID(given.strip())}"
        except ValueError:
            raise RowRefused(
                "contact_id", "'contact_id' must be a contact's id (a UUID) or empty"
            ) from None
    phones, emails = identifiers_of(values)
    if phones:
        return f"phone:{phones[0]}"
    if emails:
        return f"email:{emails[0]}"
    return "name:" + " ".join(str(values.get("name", "")).casefold().split())


class Contacts:
    name = NAME
    fields = FIELDS

    def key(self, number: int, values: dict[str, Any], checksum: str) -> str:
        return contact_key(values)

    def record(self, key: str) -> UUID:
        if key.startswith("id:"):
            return UUID(key[3:])
        return record_id(NAME, key)

    def start(self, session: Session) -> ContactRun:
        return ContactRun(session)


Identifier = tuple[str, str]
"""(kind, normalised value): ("phone", "+7...") or ("email", "...")"""


class ContactRun:
    scan_fields: frozenset[str] = frozenset()

    def __init__(self, session: Session) -> None:
        self.session = session
        self.owners: dict[Identifier, tuple[UUID | None, int]] = {}
        """phone or e-mail → (its holder, its claim stream's version), followed in memory"""
        self.file: dict[Identifier, tuple[int, UUID]] = {}
        """phone or e-mail → (row, contact id) of the row of this file that claimed it"""

    def scan(self, number: int, values: dict[str, Any]) -> None:
        pass

    def present(self, rows: Sequence[tuple[UUID, dict[str, Any]]]) -> set[UUID]:
        return existing_streams(self.session.store, [record for record, _ in rows])

    def prefetch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        wanted: set[Identifier] = set()
        for _, values in rows:
            try:
                phones, emails = identifiers_of(values)
            except RowRefused:
                continue  # refused when decided
            wanted |= contact.identifiers(phones, emails)
        self._load(wanted - set(self.owners))

    def _load(self, wanted: set[Identifier]) -> None:
        store = self.session.store
        streams = {contact.claim_stream_id(*key): key for key in wanted}
        existing = existing_streams(store, list(streams))
        for stream, key in streams.items():
            events: list[DomainEvent] = (
                [r.event for r in store.load(stream)] if stream in existing else []
            )
            self.owners[key] = (contact.claim_owner(events), len(events))

    def decide(
        self, number: int, record: UUID, values: dict[str, Any], meta: CommandMeta
    ) -> list[NewEventSpec]:
        phones, emails = identifiers_of(values)
        try:
            command = contact.RegisterContact(
                contact_id=record,
                name=values.get("name", ""),
                phones=phones,
                emails=emails,
                position=values.get("position"),
                companies=split(values, "companies"),
                notes=values.get("notes"),
            )
            event = contact.register(command, meta)
        except InvalidValue as error:
            raise _refused(error) from None
        gained = contact.identifiers(event.phones, event.emails)
        for kind, value in sorted(gained):
            if (kind, value) in self.file:
                row, holder = self.file[(kind, value)]
                what = "phone" if kind == "phone" else "e-mail"
                raise RowRefused(
                    "phones" if kind == "phone" else "emails",
                    f"likely a duplicate of row {row} (contact {holder}): it has the same "
                    f"{what} ({value})",
                    "likely_duplicate",
                )
        self._load(set(gained) - set(self.owners))
        owners = {key: self.owners[key][0] for key in gained}
        try:
            claims = contact.claims(record, frozenset(), gained, owners, meta)
        except RuleViolation as refusal:
            field = refusal.details.get("field")
            raise RowRefused(
                field if isinstance(field, str) else None, refusal.message, refusal.rule
            ) from None
        specs: list[NewEventSpec] = [(record, 1, event)]
        for claim in claims:
            key = (claim.kind, claim.value)
            _, version = self.owners[key]
            self.owners[key] = (record, version + 1)
            self.file[key] = (number, record)
            specs.append((contact.claim_stream_id(*key), version + 1, claim))
        return specs

    def refused(self, number: int) -> None:
        pass

    def consistent(self, refused: frozenset[int]) -> bool:
        return True


KIND = Contacts()

"""The ``contacts`` read model: one row per contact, with a lower-cased search text of its
name, phones and e-mails (the leads naming a contact are ``leads.contact_id``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from projections.deals import (
    Column,
    KeyedFold,
    PageEvent,
    Row,
    _bigint,
    _int,
    _moment,
    _text,
    _texts,
)

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

CONTACT_COLUMNS: tuple[Column, ...] = (
    _text("contact_id"),
    _text("name"),
    _texts("phones"),
    _texts("emails"),
    _text("position"),
    _texts("companies"),
    _text("notes"),
    _text("search"),
    _moment("created_at"),
    _text("created_by"),
    _moment("updated_at"),
    _int("version"),
    _bigint("last_position"),
)

CARD = ("name", "phones", "emails", "position", "companies", "notes")


def search_text(row: Row) -> str:
    """What a search matches: the name, and the phones' digits and the e-mails."""
    phones = [p.lstrip("+") for p in row["phones"] or ()]
    return " ".join([str(row["name"]).lower(), *phones, *(row["emails"] or ())])


class ContactProjection(KeyedFold):
    name = "contacts"
    table = "contacts"
    tables: tuple[str, ...] = ("contacts",)
    key = "contact_id"
    what = "contact"
    columns = CONTACT_COLUMNS
    topics = frozenset({"ContactRegistered", "ContactUpdated"})

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256((super().fingerprint + _SOURCE_DIGEST).encode()).hexdigest()

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        if event.topic == "ContactRegistered":
            contact = self.new_row(
                contact_id=event.stream_id, created_at=event.moment, created_by=doc["actor"]
            )
        else:
            contact = self.require(row, event)
        for field in CARD:
            value = doc.get(field)
            contact[field] = list(value) if isinstance(value, list) else value
        contact["updated_at"] = event.moment
        contact["search"] = search_text(contact)
        return contact

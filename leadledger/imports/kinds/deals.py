"""Importing deals: one row, one deal at its stage and status, linked to its lead.

Each row is decided by :func:`aggregates.deal.import_deal`. A row naming a lead (its id
in LeadLedger, or the ``external_id`` it was imported with) links both ways: the deal
carries the lead's id, and the lead records the deal (``LeadConvertedToDeal``, decided by
:func:`aggregates.lead.link_imported_deal`: a lead has at most one deal).

A row's ``external_id`` that is a LeadLedger deal id (a UUID, as a deal exported from
LeadLedger carries) is that deal's own id: exported deals import back as themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from aggregates import deal, lead
from aggregates.base import CommandMeta
from commands.leads import load_lead_records
from event_store.bulk import existing_streams
from leadledger.imports.base import Field, NewEventSpec, RowRefused, Session, natural_key, record_id

NAME = "deals"
FIELDS: tuple[Field, ...] = (
    Field("external_id", aliases=("id", "external id", "номер", "№", "код")),
    Field("title", required=True, aliases=("название", "наименование", "сделка")),
    Field("company_name", required=True, aliases=("company", "компания", "клиент")),
    Field("company_id", aliases=("инн", "inn", "tax id", "company id")),
    Field("source", required=True, aliases=("источник", "канал")),
    Field("manager", required=True, aliases=("менеджер", "ответственный")),
    Field("funnel", required=True, aliases=("воронка",)),
    Field("stage", aliases=("этап", "стадия")),
    Field("status", aliases=("статус",), help="open (default) or lost (won needs invoices)."),
    Field("created_at", "instant", required=True, aliases=("created", "дата создания", "дата")),
    Field("stage_entered_at", "instant", aliases=("дата этапа",)),
    Field("closed_at", "instant", aliases=("дата закрытия",)),
    Field("amount", "amount", aliases=("сумма",)),
    Field("description", aliases=("описание", "комментарий")),
    Field(
        "lead",
        aliases=("lead id", "lead_id", "лид"),
        help="The lead's id in LeadLedger, or the external_id it was imported with.",
    ),
    Field("reason", aliases=("причина",), help="Why it was lost."),
)
KEY_FIELDS = tuple(f.name for f in FIELDS)


def lead_ref(value: str) -> UUID:
    """A lead named by its LeadLedger id, or by the external id it was imported with."""
    try:
        return UUID(value)
    except ValueError:
        return record_id("leads", f"id:{value}")


class Deals:
    name = NAME
    fields = FIELDS

    def key(self, number: int, values: dict[str, Any], checksum: str) -> str:
        return natural_key(values, KEY_FIELDS)

    def record(self, key: str) -> UUID:
        return deal_id_of(key)

    def start(self, session: Session) -> DealRun:
        return DealRun(session)


def deal_id_of(key: str) -> UUID:
    """A deal's id from its row's key: an external id that is a UUID is the id itself."""
    if key.startswith("id:"):
        try:
            return UUID(key[3:])
        except ValueError:
            pass
    return record_id(NAME, key)


class DealRun:
    scan_fields: frozenset[str] = frozenset()

    def __init__(self, session: Session) -> None:
        self.session = session
        self.leads: dict[UUID, lead.Lead | None] = {}

    def scan(self, number: int, values: dict[str, Any]) -> None:
        pass

    def present(self, rows: Sequence[tuple[UUID, dict[str, Any]]]) -> set[UUID]:
        return existing_streams(self.session.store, [record for record, _ in rows])

    def prefetch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        for _, values in rows:
            ref = values.get("lead")
            if ref is None:
                continue
            lead_id = lead_ref(ref)
            if lead_id not in self.leads:
                records = load_lead_records(self.session.store, lead_id)
                self.leads[lead_id] = lead.fold([r.event for r in records])

    def decide(
        self, number: int, record: UUID, values: dict[str, Any], meta: CommandMeta
    ) -> list[NewEventSpec]:
        fields = dict(values)
        ref = fields.pop("lead", None)
        lead_id = None if ref is None else lead_ref(ref)
        state = None
        if lead_id is not None:
            state = self.leads.get(lead_id)
            if state is None:
                raise RowRefused(
                    "lead",
                    f"no lead '{ref}': import the leads first, or name an existing lead's id",
                    "lead_not_found",
                )
        event = deal.import_deal(
            deal.ImportDeal(deal_id=record, lead_id=lead_id, **fields), self.session.rules, meta
        )
        specs: list[NewEventSpec] = [(record, 1, event)]
        if state is not None and lead_id is not None:
            link = lead.link_imported_deal(state, record, event.funnel, meta)
            specs.append((lead_id, state.version + 1, link))
            self.leads[lead_id] = lead.evolve(state, link)
        return specs

    def refused(self, number: int) -> None:
        pass

    def consistent(self, refused: frozenset[int]) -> bool:
        return True


KIND = Deals()

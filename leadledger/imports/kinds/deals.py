"""Importing deals: one row, one deal at its stage and status, linked to its lead.

Each row is decided by :func:`aggregates.deal.import_deal`. A row naming a lead (its id
in LeadLedger, or the ``external_id`` it was imported with) links both ways: the deal
carries the lead's id, and the lead records the deal (``LeadConvertedToDeal``, decided by
:func:`aggregates.lead.link_imported_deal`: a lead has at most one deal).

A row's ``external_id`` that is a LeadLedger deal id (a UUID, as a deal exported from
LeadLedger carries) is that deal's own id: exported deals import back as themselves.

A **won** deal comes in with its money, as the commands win one: the proposal
(``proposal_amount``, ``proposal_at``, its ``service``), the contract (``contract_number``,
``contract_signed_on``), one invoice (``invoice_number``, ``invoiced``, ``invoiced_on``,
``organisation``) and what was paid of it (``paid``, ``paid_on``); the invoice of a
simplified-tax organisation is booked on its revenue ledger in the same write
(``RevenueBooked``, the cap checked), as an issued invoice is.

An **upsell** names the client's earlier deal (``previous_deal``: its id, or the external
id it was imported with; in LeadLedger already or an earlier row of the file). It carries
the lead of the client's first deal, but the lead records no second deal (a lead records
one deal, its first), as an upsell made by the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from aggregates import deal, lead, limits
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
    Field(
        "status",
        aliases=("статус",),
        help="open (default), won (with its proposal, contract and invoice) or lost.",
    ),
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
    Field(
        "previous_deal",
        aliases=("previous deal", "previous_deal_id", "предыдущая сделка"),
        help="An upsell: the client's earlier deal (its id, or the external_id it was "
        "imported with).",
    ),
    Field("service", aliases=("услуга",), help="The proposal's service (default: the title)."),
    Field("proposal_amount", "amount", aliases=("сумма кп", "сумма предложения")),
    Field(
        "proposal_at",
        "instant",
        aliases=("дата кп", "дата предложения"),
        help="When the proposal was made (default: created_at).",
    ),
    Field("contract_number", aliases=("номер договора", "договор")),
    Field("contract_signed_on", "day", aliases=("дата договора",)),
    Field("invoice_number", aliases=("номер счёта", "номер счета", "счёт", "счет")),
    Field("invoiced", "amount", aliases=("сумма счёта", "сумма счета")),
    Field("invoiced_on", "day", aliases=("дата счёта", "дата счета")),
    Field(
        "organisation",
        aliases=("организация", "юрлицо"),
        help="The organisation that issued the invoice (its id in the configuration).",
    ),
    Field("paid", "amount", aliases=("оплачено",), help="What the client paid of the invoice."),
    Field("paid_on", "day", aliases=("дата оплаты",)),
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


def deal_ref(value: str) -> UUID:
    """A deal named by its LeadLedger id, or by the external id it was imported with."""
    return deal_id_of(f"id:{value}")


class DealRun:
    scan_fields: frozenset[str] = frozenset()

    def __init__(self, session: Session) -> None:
        self.session = session
        self.leads: dict[UUID, lead.Lead | None] = {}
        self.deals: set[UUID] = set()
        """Deals an upsell may name: in the store, or decided earlier in this run."""
        self.ledgers: dict[UUID, limits.RevenueLedger] = {}

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
        earlier = {deal_ref(v["previous_deal"]) for _, v in rows if v.get("previous_deal")}
        self.deals |= existing_streams(self.session.store, list(earlier - self.deals))

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
        previous = fields.pop("previous_deal", None)
        previous_id = None if previous is None else deal_ref(previous)
        if previous_id is not None and previous_id not in self.deals:
            raise RowRefused(
                "previous_deal",
                f"no deal '{previous}': the earlier deal of an upsell is in LeadLedger "
                "already or an earlier row of the file",
                "previous_deal_not_found",
            )
        command = deal.ImportDeal(
            deal_id=record, lead_id=lead_id, previous_deal_id=previous_id, **fields
        )
        event = deal.import_deal(command, self.session.rules, meta)
        specs: list[NewEventSpec] = [(record, 1, event)]
        link = None
        if state is not None and lead_id is not None and previous_id is None:
            # an upsell carries its client's lead, which records its first deal only
            link = lead.link_imported_deal(state, record, event.funnel, meta)
            specs.append((lead_id, state.version + 1, link))
        booking = self._booking(record, event, meta)
        if booking is not None:
            specs.append(booking)
            stream, version, booked = booking
            assert isinstance(booked, limits.RevenueBooked)
            self.ledgers[stream] = limits.RevenueLedger(version, booked.total)
        if link is not None and state is not None and lead_id is not None:
            self.leads[lead_id] = lead.evolve(state, link)
        self.deals.add(record)
        return specs

    def _booking(
        self, record: UUID, event: deal.DealImported, meta: CommandMeta
    ) -> NewEventSpec | None:
        """The imported invoice booked on its organisation's revenue ledger, as an issued
        invoice is (commands.deals): a simplified-tax organisation's, within its cap."""
        if event.invoice_organisation is None or event.invoice_issued_on is None:
            return None
        organisation = self.session.rules.require_organisation(event.invoice_organisation)
        if organisation.yearly_revenue_cap is None:
            return None
        assert event.invoice_number is not None
        assert event.invoice_amount is not None
        year = event.invoice_issued_on.year
        stream = limits.revenue_stream_id(organisation.id, year)
        ledger = self.ledgers.get(stream)
        if ledger is None:
            ledger = limits.revenue_ledger([r.event for r in self.session.store.load(stream)])
        booked = limits.book_revenue(
            ledger, organisation, year, record, event.invoice_number, event.invoice_amount, meta
        )
        return (stream, ledger.version + 1, booked)

    def refused(self, number: int) -> None:
        pass

    def consistent(self, refused: frozenset[int]) -> bool:
        return True


KIND = Deals()

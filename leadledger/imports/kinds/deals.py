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

A won deal **becomes its project** in the same write, as a deal won through the commands
does (``ProjectCreated`` when it was won, the deal's ``DealProjectStarted``, its invoices
carried onto the project's billing and what was paid recorded there): check growth and the
client card count it. The optional ``project_status``, ``project_pm``, ``project_start``,
``project_end`` and ``project_value`` set the project's card and status through the
Project aggregate's deciders (:func:`aggregates.project.import_project`).

**Several invoices**: a *continuation row* names the deal by its ``external_id`` and
leaves the deal's card empty: it adds an invoice (``invoice_number``, ``invoiced``,
``invoiced_on``, ``organisation``, optionally ``paid`` and ``paid_on``), decided by the
same :func:`aggregates.deal.import_invoice` as the deal's first one (a ``DealInvoiceIssued``
on the deal, booked on the revenue ledger, carried onto its project), or, naming one of
the deal's invoices with ``paid`` and ``paid_on`` only, a further payment of it (the
billing's ``RecordPayment``). Continuation rows follow their deal's row in the file.

An **upsell** names the client's earlier deal (``previous_deal``: its id, or the external
id it was imported with; in LeadLedger already or an earlier row of the file). It carries
the lead of the client's first deal, but the lead records no second deal (a lead records
one deal, its first), as an upsell made by the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from aggregates import billing, deal, lead, limits, project
from aggregates.base import CommandMeta
from aggregates.errors import RuleViolation
from commands.leads import load_lead_records
from commands.projects import deal_project, project_id_for_deal
from event_store.bulk import existing_streams
from leadledger.imports.base import Field, NewEventSpec, RowRefused, Session, natural_key, record_id

NAME = "deals"
FIELDS: tuple[Field, ...] = (
    Field("external_id", aliases=("id", "external id", "номер", "№", "код")),
    Field("title", needs_column=True, aliases=("название", "наименование", "сделка")),
    Field("company_name", needs_column=True, aliases=("company", "компания", "клиент")),
    Field("company_id", aliases=("инн", "inn", "tax id", "company id")),
    Field("source", needs_column=True, aliases=("источник", "канал")),
    Field("manager", needs_column=True, aliases=("менеджер", "ответственный")),
    Field("funnel", needs_column=True, aliases=("воронка",)),
    Field("stage", aliases=("этап", "стадия")),
    Field(
        "status",
        aliases=("статус",),
        help="open (default), won (with its proposal, contract and invoice) or lost.",
    ),
    Field("created_at", "instant", needs_column=True, aliases=("created", "дата создания", "дата")),
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
    Field(
        "project_status",
        aliases=("статус проекта",),
        help="A won deal's project: its status (default: the first configured).",
    ),
    Field("project_pm", aliases=("рп", "руководитель проекта"), help="The project's PM."),
    Field("project_start", "day", aliases=("начало проекта",)),
    Field("project_end", "day", aliases=("окончание проекта",)),
    Field(
        "project_value",
        "amount",
        aliases=("стоимость проекта",),
        help="The project's value (default: the deal's amount).",
    ),
)
KEY_FIELDS = tuple(f.name for f in FIELDS if not f.name.startswith("project_"))
"""A row without ``external_id`` is keyed by these (the project's columns left out, so a
file keyed before they existed keys the same)."""
CARD = ("title", "company_name", "source", "manager", "funnel", "created_at")
"""A deal row's required fields; a continuation row leaves them all empty."""
PROJECT_COLUMNS = {
    "project_status": "status",
    "project_pm": "pm",
    "project_start": "planned_start",
    "project_end": "planned_end",
    "project_value": "amount",
}
"""The project's columns → the project card's fields."""
INVOICE_CELLS = frozenset({*deal.INVOICE_COLUMNS, "paid", "paid_on"})
CONTINUED = "+"
"""A continuation row's key starts so (no deal key does: they start 'id:' or 'row:')."""


def adds_invoice(values: dict[str, Any]) -> bool:
    """A continuation row that adds an invoice (else it pays one of the deal's)."""
    return any(values.get(c) is not None for c in ("invoiced", "invoiced_on", "organisation"))


def continues(values: dict[str, Any]) -> bool:
    """A continuation row: the deal named by its external id, its card left empty."""
    return bool(values.get("external_id")) and not any(values.get(f) for f in CARD)


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
        if continues(values):
            # an invoice of the deal, or a further payment of one: its own row's record
            invoice = values.get("invoice_number", "")
            if adds_invoice(values):
                what = f"invoice:{invoice}"
            else:
                what = f"payment:{invoice}:{values.get('paid_on', '')}:{values.get('paid', '')}"
            return f"{CONTINUED}{values['external_id']}\x1f{what}"
        return natural_key(values, KEY_FIELDS)

    def record(self, key: str) -> UUID:
        if key.startswith(CONTINUED):
            return record_id(NAME, key)
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


@dataclass
class _Decided:
    """A deal decided in this run, as further rows of the file add to it."""

    row: int
    open: deal.Deal
    """The deal before its close: its further invoices are decided on it."""
    version: int
    """The deal stream's last version in this write."""
    project_id: UUID | None = None
    bills: billing.Billing | None = None
    opened: datetime | None = None
    """When its project was opened (the deal won)."""


class DealRun:
    scan_fields: frozenset[str] = frozenset()

    def __init__(self, session: Session) -> None:
        self.session = session
        self.leads: dict[UUID, lead.Lead | None] = {}
        self.deals: set[UUID] = set()
        """Deals an upsell may name: in the store, or decided earlier in this run."""
        self.ledgers: dict[UUID, limits.RevenueLedger] = {}
        self.decided: dict[UUID, _Decided] = {}
        self.stored: set[UUID] = set()
        """Deals a continuation row names that are in the store already."""
        self.refused_deals: dict[UUID, int] = {}
        self.rows: dict[int, UUID] = {}
        """Deal rows decided or being decided: row → deal."""

    def scan(self, number: int, values: dict[str, Any]) -> None:
        pass

    def present(self, rows: Sequence[tuple[UUID, dict[str, Any]]]) -> set[UUID]:
        deal_rows = [record for record, values in rows if not continues(values)]
        found = existing_streams(self.session.store, deal_rows)
        more = [(record, values) for record, values in rows if continues(values)]
        if not more:
            return found
        named = {deal_ref(values["external_id"]) for _, values in more}
        self.stored |= existing_streams(self.session.store, list(named - self.stored))
        for record, values in more:
            deal_id = deal_ref(values["external_id"])
            if deal_id in self.stored and self._stored_already(deal_id, values):
                found.add(record)
        return found

    def _stored_already(self, deal_id: UUID, values: dict[str, Any]) -> bool:
        """Whether a stored deal holds a continuation row's invoice, or its payment."""
        number = values.get("invoice_number")
        if adds_invoice(values):
            state = deal.fold([r.event for r in self.session.store.load(deal_id)])
            return state is not None and any(i.number == number for i in state.invoices)
        stream = billing.billing_stream_id(project_id_for_deal(deal_id))
        return any(
            isinstance(e := r.event, billing.ProjectPaymentRecorded)
            and (e.invoice_number, e.amount, e.paid_on)
            == (number, values.get("paid"), values.get("paid_on"))
            for r in self.session.store.load(stream)
        )

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
        if continues(values):
            return self._continued(values, meta)
        for name in CARD:
            if values.get(name) is None:
                raise RowRefused(name, f"'{name}' is required")
        self.rows[number] = record
        fields = dict(values)
        card = project.ImportedCard(
            **{PROJECT_COLUMNS[c]: fields.pop(c) for c in list(fields) if c in PROJECT_COLUMNS}
        )
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
        decided = _Decided(number, deal.before_close(deal.imported(event)), 1)
        specs: list[NewEventSpec] = [(record, 1, event)]
        if event.status == "won":
            specs += self._project(record, event, card, decided, meta)
        elif card != project.ImportedCard():
            column = next(c for c, f in PROJECT_COLUMNS.items() if getattr(card, f) is not None)
            raise RowRefused(
                column,
                f"only a won deal becomes a project: '{column}' is for a won deal's row",
                "deal_not_won",
            )
        link = None
        if state is not None and lead_id is not None and previous_id is None:
            # an upsell carries its client's lead, which records its first deal only
            link = lead.link_imported_deal(state, record, event.funnel, meta)
            specs.append((lead_id, state.version + 1, link))
        if event.invoice_number is not None:
            assert event.invoice_amount is not None
            assert event.invoice_organisation is not None
            assert event.invoice_issued_on is not None
            booking = self._booking(
                record,
                event.invoice_number,
                event.invoice_amount,
                event.invoice_organisation,
                event.invoice_issued_on,
                meta,
            )
            specs += booking
        if link is not None and state is not None and lead_id is not None:
            self.leads[lead_id] = lead.evolve(state, link)
        self.deals.add(record)
        self.decided[record] = decided
        return specs

    def _project(
        self,
        record: UUID,
        event: deal.DealImported,
        card: project.ImportedCard,
        decided: _Decided,
        meta: CommandMeta,
    ) -> list[NewEventSpec]:
        """The won deal's project, as the project process opens one when a deal is won
        (commands.projects.create_project_for_deal): created at the deal's close, linked
        from the deal, its invoice carried onto its billing and what was paid recorded
        there; then its card and status as the file says."""
        rules = self.session.rules
        won = deal.imported(event)
        assert won.closed_at is not None
        project_id = project_id_for_deal(record)
        opened = replace(meta, at=won.closed_at)
        names = {field: column for column, field in PROJECT_COLUMNS.items()}
        with deal.AsColumns(names):
            made = project.import_project(
                deal_project(won, project_id, rules), card, rules.project, opened, meta
            )
        specs: list[NewEventSpec] = [(project_id, n, e) for n, e in enumerate(made, start=1)]
        linked = deal.decide(won, deal.NoteProject(project_id), rules, meta)
        decided.version += 1
        specs.append((record, decided.version, linked))
        decided.project_id, decided.opened = project_id, won.closed_at
        decided.bills = billing.empty_billing(project_id, won.closed_at)
        for invoice in won.invoices:
            specs.append(self._carry(record, decided, invoice, opened))
        if event.paid is not None and event.invoice_number is not None:
            specs.append(self._pay(decided, event.invoice_number, event.paid, event.paid_on, meta))
        return specs

    def _carry(
        self, record: UUID, decided: _Decided, invoice: deal.Invoice, meta: CommandMeta
    ) -> NewEventSpec:
        """The deal's invoice carried onto its project's billing, as at the project's
        creation."""
        assert decided.bills is not None
        assert decided.project_id is not None
        carry = billing.CarryDealInvoice(
            record, invoice.number, invoice.amount, invoice.organisation, False, invoice.issued_on
        )
        carried = billing.decide(decided.bills, carry, meta)
        decided.bills = billing.evolve(decided.bills, carried)
        return (billing.billing_stream_id(decided.project_id), decided.bills.version, carried)

    def _pay(
        self,
        decided: _Decided,
        number: str | None,
        paid: Decimal | None,
        paid_on: date | None,
        meta: CommandMeta,
    ) -> NewEventSpec:
        """A payment on the project's billing, decided as of the import and recorded at
        its day (as a further invoice is: the client card's timeline shows them when they
        happened; the instant of a day's event is its start, UTC)."""
        if decided.bills is None or decided.project_id is None or decided.opened is None:
            raise RowRefused(
                "paid",
                "a further payment is recorded on the won deal's project: an open or lost "
                "deal has none",
                "deal_not_won",
            )
        payment = deal.record_payment(decided.bills, number, paid, paid_on, decided.opened, meta)
        payment = replace(payment, at=deal.midnight(payment.paid_on))
        decided.bills = billing.evolve(decided.bills, payment)
        return (billing.billing_stream_id(decided.project_id), decided.bills.version, payment)

    def _continued(self, values: dict[str, Any], meta: CommandMeta) -> list[NewEventSpec]:
        """A continuation row: a further invoice of the deal, or a further payment."""
        extra = sorted(set(values) - INVOICE_CELLS - {"external_id"})
        if extra:
            raise RowRefused(
                extra[0],
                f"a continuation row (the deal's card left empty) adds an invoice or a payment "
                f"only: '{extra[0]}' belongs on the deal's own row",
                "continuation_row",
            )
        ref = values["external_id"]
        deal_id = deal_ref(ref)
        decided = self.decided.get(deal_id)
        if decided is None:
            if deal_id in self.refused_deals:
                row = self.refused_deals[deal_id]
                reason = f"deal '{ref}' (row {row}) was refused: its invoices come in with it"
            elif deal_id in self.stored:
                reason = (
                    f"deal '{ref}' was imported already: its further invoices come in with it, "
                    "in the same file"
                )
            else:
                reason = f"no deal '{ref}' in an earlier row: a continuation row follows its deal"
            raise RowRefused("external_id", reason, "deal_not_found")
        number = values.get("invoice_number")
        specs: list[NewEventSpec] = []
        if adds_invoice(values):
            rules = self.session.rules
            try:
                issued = deal.import_invoice(
                    decided.open,
                    number,
                    values.get("invoiced"),
                    values.get("invoiced_on"),
                    values.get("organisation"),
                    rules,
                    meta,
                )
            except RuleViolation as refusal:
                if refusal.rule != "invoice_number_taken":
                    raise
                raise RowRefused("invoice_number", refusal.message, refusal.rule) from None
            issued = replace(issued, at=deal.midnight(issued.issued_on))
            decided.open = deal.evolve(decided.open, issued)
            decided.version += 1
            specs.append((deal_id, decided.version, issued))
            specs += self._booking(
                deal_id, issued.number, issued.amount, issued.organisation, issued.issued_on, meta
            )
            if decided.project_id is not None:
                assert decided.opened is not None
                invoice = decided.open.invoices[-1]
                specs.append(
                    self._carry(deal_id, decided, invoice, replace(meta, at=decided.opened))
                )
            if values.get("paid") is None and values.get("paid_on") is None:
                return specs
        elif not any(i.number == number for i in decided.open.invoices):
            raise RowRefused(
                "invoice_number",
                f"deal '{ref}' has no invoice '{number}': a payment row names one of its "
                "invoices (or gives a new one's invoiced, invoiced_on and organisation)",
                "invoice_not_found",
            )
        specs.append(self._pay(decided, number, values.get("paid"), values.get("paid_on"), meta))
        return specs

    def _booking(
        self,
        record: UUID,
        number: str,
        amount: Decimal,
        organisation_id: str,
        issued_on: date,
        meta: CommandMeta,
    ) -> list[NewEventSpec]:
        """The imported invoice booked on its organisation's revenue ledger, as an issued
        invoice is (commands.deals): a simplified-tax organisation's, within its cap."""
        organisation = self.session.rules.require_organisation(organisation_id)
        if organisation.yearly_revenue_cap is None:
            return []
        year = issued_on.year
        stream = limits.revenue_stream_id(organisation.id, year)
        ledger = self.ledgers.get(stream)
        if ledger is None:
            ledger = limits.revenue_ledger([r.event for r in self.session.store.load(stream)])
        booked = limits.book_revenue(ledger, organisation, year, record, number, amount, meta)
        self.ledgers[stream] = limits.RevenueLedger(ledger.version + 1, booked.total)
        return [(stream, ledger.version + 1, booked)]

    def refused(self, number: int) -> None:
        deal_id = self.rows.pop(number, None)
        if deal_id is not None:
            self.refused_deals.setdefault(deal_id, number)

    def consistent(self, refused: frozenset[int]) -> bool:
        return True


KIND = Deals()

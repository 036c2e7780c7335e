"""Importing leads: one row, one lead, at its stage and status with its original dates.

Each row is decided by :func:`aggregates.lead.import_lead` (the card and every step to
the row's stage and status by the Lead decider's rules; the answer of its step-by-step
definition, ``import_lead_by_steps``). A lead naming a company id is
**repeat** when the company had a lead before, as on creation: in the store already, or
an earlier lead of the file, "earlier" meaning created earlier (then the earlier row).
The company's first lead registers it (``CompanyRegistered``) in the same write; for a
company in the directory with no lead yet (imported from a companies file, say), its
first lead is recorded on it (``CompanyFirstLeadRecorded``, on the surviving record of a
merged one: the earliest created lead of the ids merged into it) and that lead is new.

A row's ``external_id`` that is a LeadLedger lead id (a UUID, as a lead exported from
LeadLedger carries) is that lead's own id, as a deals file names leads: exported leads
import back as themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from aggregates import company, lead
from aggregates.base import CommandMeta
from commands.companies import load_company_records, survivor_of
from event_store.bulk import existing_stream_ids, existing_streams
from leadledger.imports.base import Field, NewEventSpec, Session, natural_key, record_id

NAME = "leads"
FIELDS: tuple[Field, ...] = (
    Field(
        "external_id",
        aliases=("id", "external id", "номер", "№", "код"),
        help="The lead's id in the old system: re-imports and deal files find it by it.",
    ),
    Field("title", required=True, aliases=("название", "тема", "наименование")),
    Field("company_name", required=True, aliases=("company", "компания", "клиент")),
    Field(
        "company_id",
        aliases=("инн", "inn", "tax id", "company id"),
        help="The client's id in the company registry (its tax number): sets repeat.",
    ),
    Field("source", required=True, aliases=("источник", "канал")),
    Field(
        "manager", required=True, aliases=("менеджер", "ответственный"), help="The manager's login."
    ),
    Field("funnel", required=True, aliases=("воронка",)),
    Field("stage", aliases=("этап", "стадия"), help="Default: the funnel's first stage."),
    Field("status", aliases=("статус",), help="open (default), paused, won, lost or non_quality."),
    Field(
        "created_at",
        "instant",
        required=True,
        aliases=("created", "дата создания", "создан", "дата"),
        help="When the lead was created in the old system.",
    ),
    Field(
        "stage_entered_at",
        "instant",
        aliases=("дата этапа",),
        help="When it entered its stage (default: created_at).",
    ),
    Field(
        "closed_at",
        "instant",
        aliases=("дата закрытия", "закрыт"),
        help="When it was won, lost or found non-quality (default: stage_entered_at).",
    ),
    Field("paused_since", "instant", aliases=("дата паузы",)),
    Field("amount", "amount", aliases=("сумма", "бюджет")),
    Field("currency", aliases=("валюта",)),
    Field("expert", aliases=("эксперт",)),
    Field("need_maturity", aliases=("зрелость потребности",)),
    Field("answer_due", "day", aliases=("срок ответа",)),
    Field("description", aliases=("описание", "комментарий")),
    Field("contact", aliases=("контакт", "контактное лицо")),
    Field("assessment_required", "flag", aliases=("нужна оценка",)),
    Field(
        "quality",
        "flag",
        aliases=("качественный",),
        help="yes: qualified as quality (the funnel's assessment rule applies).",
    ),
    Field(
        "reason",
        aliases=("причина",),
        help="Why it is lost, non-quality, won or paused (required where the rule asks).",
    ),
)
KEY_FIELDS = tuple(f.name for f in FIELDS)


class Leads:
    name = NAME
    fields = FIELDS

    def key(self, number: int, values: dict[str, Any], checksum: str) -> str:
        return natural_key(values, KEY_FIELDS)

    def record(self, key: str) -> UUID:
        return lead_id_of(key)

    def start(self, session: Session) -> LeadRun:
        return LeadRun(session)


def lead_id_of(key: str) -> UUID:
    """A lead's id from its row's key: an external id that is a UUID is the id itself."""
    if key.startswith("id:") and len(key) >= 35:  # a UUID's text has its 32 digits at least
        try:
            return UUID(key[3:])
        except ValueError:
            pass
    return record_id(NAME, key)


def _company(values: dict[str, Any]) -> str | None:
    raw = values.get("company_id")
    return raw.strip() or None if isinstance(raw, str) else None


class LeadRun:
    scan_fields = frozenset({"company_id", "created_at"})
    independent = True
    """After ``scan`` and a first ``prefetch``, a row's decision depends on the run's
    state only, never on another row's decision: batches may be decided apart."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.first: dict[str, tuple[datetime, int]] = {}
        """company id → (created_at, row) of its first lead in the file"""
        self.in_store: dict[str, str] = {}
        """company id → its surviving record's id, for the companies in the store"""
        self.survivors: dict[str, company.Company] = {}
        self.survivor_first: dict[str, int] = {}
        """surviving record's id → the row of its first lead in the file (the earliest
        created over the company ids merged into it)"""
        self.checked: set[str] = set()

    def scan(self, number: int, values: dict[str, Any]) -> None:
        company_id = _company(values)
        created = values.get("created_at")
        if company_id is None or not isinstance(created, datetime):
            return
        seen = self.first.get(company_id)
        if seen is None or (created, number) < seen:
            self.first[company_id] = (created, number)

    def present(self, rows: Sequence[tuple[UUID, dict[str, Any]]]) -> set[UUID]:
        return existing_streams(self.session.store, [record for record, _ in rows])

    def present_ids(self, records: Sequence[bytes]) -> set[bytes]:
        """``present`` for record ids as their 16 bytes (the pooled path's)."""
        return existing_stream_ids(self.session.store, records)

    def prefetch(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """The companies in the store of every row scanned (at the first call) and of
        these rows."""
        wanted = {c for _, v in rows if (c := _company(v)) is not None}
        wanted = (wanted | self.first.keys()) - self.checked
        if not wanted:
            return
        streams = {company.company_stream_id(c): c for c in wanted}
        store = self.session.store
        for stream in existing_streams(store, list(streams)):
            # few: the companies a file names that are in the store already
            company_id = streams[stream]
            state = company.fold([r.event for r in load_company_records(store, company_id)])
            if state is not None:
                survivor = survivor_of(store, state)
                self.in_store[company_id] = survivor.company_id
                self.survivors.setdefault(survivor.company_id, survivor)
        self.checked.update(wanted)
        firsts: dict[str, tuple[datetime, int]] = {}
        for company_id, survivor_id in self.in_store.items():
            seen = self.first.get(company_id)
            if seen is not None and (survivor_id not in firsts or seen < firsts[survivor_id]):
                firsts[survivor_id] = seen
        self.survivor_first = {s: row for s, (_, row) in firsts.items()}

    def decide(
        self, number: int, record: UUID, values: dict[str, Any], meta: CommandMeta
    ) -> list[NewEventSpec]:
        company_id = _company(values)
        first = company_id is not None and self.first.get(company_id, (None, number))[1] == number
        survivor_id = None if company_id is None else self.in_store.get(company_id)
        stored = None if survivor_id is None else self.survivors[survivor_id]
        if stored is not None:
            known = stored.had_leads or self.survivor_first.get(stored.company_id, number) != number
        else:
            known = company_id is not None and not first
        command = lead.import_command(record, values)
        event = lead.import_lead(command, self.session.funnels, meta, company_known=known)
        specs: list[NewEventSpec] = [(record, 1, event)]
        if company_id is None or known:
            return specs
        if stored is None:
            registration = company.register(company_id, event.company_name, record, meta)
            specs.append((company.company_stream_id(company_id), 1, registration))
            return specs
        recorded = company.lead_named(stored, record, meta)
        if recorded is not None:
            stream = company.company_stream_id(stored.company_id)
            specs.append((stream, stored.version + 1, recorded))
        return specs

    def refused(self, number: int) -> None:
        pass

    def consistent(self, refused: frozenset[int]) -> bool:
        return not any(row in refused for _, row in self.first.values())


KIND = Leads()

"""Company directory handlers: register, change the card, merge; and what a new lead
naming a company appends to it.

Each command loads the company's stream (the primary one, whose version ``If-Match``
names) and the claim streams its card touches, lets :mod:`aggregates.company` decide,
and appends the company's event with every claim event in one atomic write at the
versions it read: a racing registration with the same tax id moves a claim stream, the
append is refused, and the command is decided again on fresh state, where it hears
``likely_duplicate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid5

from aggregates import company
from aggregates.base import CommandMeta, DomainEvent
from commands.context import CommandContext, CommandResult, StreamNotFound
from commands.execution import execute, load_stream
from event_store import EventStore, NewEvent, RecordedEvent

COMPANY_ID_NAMESPACE = UUID("2d8f61b4-0c5e-4f3a-b7d2-9e14a6c3f580")
MAX_MERGE_HOPS = 100


def company_id_for(command_id: UUID) -> str:
    """A company registered in the directory without an id of its own gets one from its
    command id, so a replayed registration finds its company."""
    return str(uuid5(COMPANY_ID_NAMESPACE, f"command:{command_id}"))


def load_company_records(
    store: EventStore, company_id: str, *, as_of: datetime | None = None
) -> list[RecordedEvent]:
    return load_stream(
        store, company.company_stream_id(company_id), company.COMPANY_STREAM_STARTS, as_of=as_of
    )


def load_company(store: EventStore, company_id: str) -> company.Company:
    state = company.fold([r.event for r in load_company_records(store, company_id)])
    if state is None:
        raise StreamNotFound(f"company {company_id} not found")
    return state


def survivor_of(store: EventStore, state: company.Company) -> company.Company:
    """The record a company's merges end in (itself when it was never merged)."""
    for _ in range(MAX_MERGE_HOPS):
        if state.merged_into is None:
            return state
        state = load_company(store, state.merged_into)
    raise RuntimeError(f"company {state.company_id}: a merge chain longer than {MAX_MERGE_HOPS}")


class ClaimStreams:
    """The claim streams a decision read, each with the version it was read at: the
    claim events are appended at exactly the next version, so a claim taken after the
    read refuses the append (and the command is decided again on fresh state)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.versions: dict[UUID, int] = {}

    def _load(self, stream: UUID) -> list[DomainEvent]:
        events = [r.event for r in self.store.load(stream)]
        self.versions.setdefault(stream, len(events))
        return events

    def tax(self, tax: str | None) -> company.TaxIdClaim | None:
        if tax is None:
            return None
        return company.fold_tax_claim(tax, self._load(company.tax_id_stream_id(tax)))

    def name(self, key: str) -> company.NameClaim:
        return company.fold_name_claim(key, self._load(company.name_stream_id(key)))

    def events(self, claims: Sequence[tuple[str, str, DomainEvent]]) -> list[NewEvent]:
        """Claim events (kind, key, event) at their streams' next versions, in order."""
        out: list[NewEvent] = []
        for kind, key, event in claims:
            stream = company.tax_id_stream_id(key) if kind == "tax" else company.name_stream_id(key)
            if stream not in self.versions:
                self._load(stream)
            self.versions[stream] += 1
            out.append(NewEvent(stream, self.versions[stream], event))
        return out


def _keyed(claims: list[tuple[str, DomainEvent]]) -> list[tuple[str, str, DomainEvent]]:
    keyed: list[tuple[str, str, DomainEvent]] = []
    for kind, event in claims:
        key = getattr(event, "tax_id", None) if kind == "tax" else getattr(event, "name_key", None)
        assert isinstance(key, str)
        keyed.append((kind, key, event))
    return keyed


def register_company(
    store: EventStore, command: company.RegisterCompany, ctx: CommandContext
) -> CommandResult:
    """Add a company to the directory with its card, claiming its tax id and its name
    in its city (409 likely_duplicate when another company holds either)."""
    stream_id = company.company_stream_id(command.company_id)

    def decide(_: list[RecordedEvent]) -> Sequence[NewEvent]:
        card = company.check_card(command.card)
        streams = ClaimStreams(store)
        event, claims = company.add_to_directory(
            command,
            streams.tax(card.tax_id),
            streams.name(company.name_key(card.name, card.city)),
            ctx.meta,
        )
        return [NewEvent(stream_id, 1, event), *streams.events(_keyed(claims))]

    return execute(store, ctx, stream_id, decide, what="company", must_exist=False)


def change_company_card(
    store: EventStore,
    company_id: str,
    command: company.ChangeCompanyCard,
    ctx: CommandContext,
) -> CommandResult:
    """Change a company's card (PUT: the whole card; PATCH: the fields sent); a new tax
    id or name is claimed and the old one released in the same write."""
    stream_id = company.company_stream_id(company_id)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = company.fold([r.event for r in history])
        assert state is not None
        streams = ClaimStreams(store)
        if state.merged_into is None:
            card = company.proposed_card(state, command)
            tax_claim = streams.tax(card.tax_id)
            name_claim = streams.name(company.name_key(card.name, card.city))
        else:
            tax_claim, name_claim = None, None
        event, claims = company.change_card(state, command, tax_claim, name_claim, ctx.meta)
        return [NewEvent(stream_id, state.version + 1, event), *streams.events(_keyed(claims))]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what="company",
        load=lambda _: load_company_records(store, company_id),
        state_of=lambda history: company.fold([r.event for r in history]),
    )


def merge_company(
    store: EventStore,
    company_id: str,
    command: company.MergeCompany,
    ctx: CommandContext,
) -> CommandResult:
    """Merge a duplicate into the surviving record: an event on both streams and its
    claims moved to the survivor, in one write."""
    stream_id = company.company_stream_id(company_id)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        state = company.fold([r.event for r in history])
        assert state is not None
        into = command.into.strip() if isinstance(command.into, str) else ""
        survivor_records = load_company_records(store, into) if into else []
        survivor = company.fold([r.event for r in survivor_records])
        merged, absorbed = company.merge(state, survivor, command, ctx.meta)
        return [
            NewEvent(stream_id, state.version + 1, merged),
            NewEvent(
                company.company_stream_id(absorbed.company_id), len(survivor_records) + 1, absorbed
            ),
            *ClaimStreams(store).events(company.moved_claims(state, absorbed.company_id, ctx.meta)),
        ]

    return execute(
        store,
        ctx,
        stream_id,
        decide,
        what="company",
        load=lambda _: load_company_records(store, company_id),
        state_of=lambda history: company.fold([r.event for r in history]),
    )


def lead_named_company(
    store: EventStore, company_id: str, lead_id: UUID, company_name: str, meta: CommandMeta
) -> tuple[bool, list[NewEvent]]:
    """What a new lead naming ``company_id`` appends besides its own event, and whether
    it is a repeat lead: a company never seen is registered (new); a company registered
    in the directory with no lead yet records this one as its first (new); else the
    lead is a repeat, of the survivor when the company was merged."""
    records = load_company_records(store, company_id)
    if not records:
        stream = company.company_stream_id(company_id)
        registration = company.register(company_id, company_name, lead_id, meta)
        return False, [NewEvent(stream, 1, registration)]
    target = survivor_of(store, company.fold([r.event for r in records]) or _missing(company_id))
    first = company.lead_named(target, lead_id, meta)
    if first is None:
        return True, []
    return False, [
        NewEvent(company.company_stream_id(target.company_id), target.version + 1, first)
    ]


def _missing(company_id: str) -> company.Company:
    raise StreamNotFound(f"company {company_id} not found")

"""Test data: drive leads through the command handlers, and random valid lead histories.

``LeadDriver`` sends commands through ``commands.leads`` exactly as the HTTP layer does
(a ``CommandContext`` from ``CommandContext.new`` with the driver's clock), so every event
in a test store went through the real decider and the real append.

``generate_history(seed, ...)`` builds a random but valid history of many leads —
creates, moves, transfers, pauses and resumes, card and cost edits, assessments,
qualifications and closes — with strictly increasing times. It keeps a small model of
each lead's state to choose only commands the Lead rules accept; ``apply_history`` runs it
through the handlers and fails loudly if one is refused, which would mean the model and
the rules disagree. ``histories()`` is the hypothesis strategy over it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from aggregates import lead
from aggregates.funnels import FunnelCatalog
from commands.context import CommandContext, CommandResult
from commands.leads import create_lead, handle_lead_command
from event_store import EventStore
from leadledger.settings import DEFAULT_FUNNELS_FILE
from leadledger.wiring import load_funnels

FUNNELS: FunnelCatalog = load_funnels(DEFAULT_FUNNELS_FILE)
DEFAULT_ACTOR = "anna.sales"
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class ManualClock:
    """A clock set by hand (``set``/``advance``); calling it returns the current instant."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = at

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def lead_uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


# --- driving leads through the handlers -------------------------------------------------


class LeadDriver:
    """Sends lead commands through the handlers with a context built from ``clock``."""

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Callable[[], datetime] | None = None,
        funnels: FunnelCatalog = FUNNELS,
        actor: str = DEFAULT_ACTOR,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.clock = clock or ManualClock()
        self.funnels = funnels
        self.actor = actor
        self._rng = random.Random(seed)

    def context(self, **options: Any) -> CommandContext:
        """``CommandContext.new`` with this driver's actor and clock (actor overridable)."""
        actor = options.pop("actor", self.actor)
        return CommandContext.new(actor=actor, clock=self.clock, **options)

    def create(
        self,
        *,
        lead_id: UUID | None = None,
        funnel: str = "out_of_court",
        title: str = "Appraisal of a warehouse",
        company_name: str = "Northwind LLC",
        source: str = "website",
        manager: str = "boris",
        **optional: Any,
    ) -> CommandResult:
        """Create a lead; ``optional`` takes the other CreateLead fields and context options."""
        ctx_options = {
            k: optional.pop(k)
            for k in ("actor", "expected_version", "idempotency_key", "request", "correlation_id")
            if k in optional
        }
        command = lead.CreateLead(
            lead_id=lead_id or lead_uuid(self._rng),
            funnel=funnel,
            title=title,
            company_name=company_name,
            source=source,
            manager=manager,
            **optional,
        )
        return create_lead(self.store, self.funnels, command, self.context(**ctx_options))

    def send(self, lead_id: UUID, command: lead.LeadCommand, **ctx_options: Any) -> CommandResult:
        return handle_lead_command(
            self.store, self.funnels, lead_id, command, self.context(**ctx_options)
        )

    # One method per command, named after the intention.
    def update_card(self, lead_id: UUID, /, **changes: Any) -> CommandResult:
        return self.send(lead_id, lead.UpdateLeadCard(changes))

    def set_cost(self, lead_id: UUID, /, *components: tuple[str, Decimal | str]) -> CommandResult:
        parts = tuple(lead.CostComponent(name, Decimal(amount)) for name, amount in components)
        return self.send(lead_id, lead.SetLeadCostBreakdown(parts))

    def move(self, lead_id: UUID, stage: str, **ctx_options: Any) -> CommandResult:
        return self.send(lead_id, lead.MoveLeadToStage(stage), **ctx_options)

    def transfer(self, lead_id: UUID, funnel: str, stage: str | None = None) -> CommandResult:
        return self.send(lead_id, lead.TransferLead(funnel, stage))

    def pause(self, lead_id: UUID, reason: str = "waiting for documents") -> CommandResult:
        return self.send(lead_id, lead.PauseLead(reason))

    def resume(self, lead_id: UUID) -> CommandResult:
        return self.send(lead_id, lead.ResumeLead())

    def assess(
        self, lead_id: UUID, expert: str = "eva", result: str = "feasible", hours: str = "2.5"
    ) -> CommandResult:
        return self.send(lead_id, lead.RecordLeadAssessment(expert, result, Decimal(hours)))

    def qualify(
        self, lead_id: UUID, quality: bool = True, reason: str | None = None
    ) -> CommandResult:
        return self.send(lead_id, lead.QualifyLead(quality, reason))

    def close(
        self, lead_id: UUID, outcome: str = "won", reason: str | None = None
    ) -> CommandResult:
        return self.send(lead_id, lead.CloseLead(outcome, reason))


# --- random valid histories -------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One command at one instant: a CreateLead, or a command on ``lead_id``."""

    at: datetime
    lead_id: UUID
    command: lead.CreateLead | lead.LeadCommand
    actor: str = DEFAULT_ACTOR


@dataclass
class _Model:
    """What the generator needs to know of a lead to pick only acceptable commands."""

    funnel: str
    stage: str
    status: str = "open"
    assessed: bool = False
    quality: bool | None = None
    card: dict[str, Any] = field(default_factory=dict)
    components: tuple[lead.CostComponent, ...] = ()

    @property
    def closed(self) -> bool:
        return self.status in ("won", "lost", "non_quality")


MANAGERS = ("boris", "vera", "gleb", "dina")
EXPERTS = ("eva", "ivan", "oleg")
SOURCES = ("website", "referral", "tender", "cold_call")
ACTORS = ("anna.sales", "boris", "vera")
WORDS = ("warehouse", "plant", "office", "land plot", "trademark", "equipment", "fleet")


def _amount(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(0, 5_000_000)) / 100


def _create(rng: random.Random, companies: Sequence[str]) -> lead.CreateLead:
    funnel = rng.choice(sorted(FUNNELS))
    return lead.CreateLead(
        lead_id=lead_uuid(rng),
        funnel=funnel,
        title=f"Appraisal of a {rng.choice(WORDS)}",
        company_name=f"Company {rng.randrange(1000)}",
        company_id=rng.choice([None, *companies]),
        source=rng.choice(SOURCES),
        manager=rng.choice(MANAGERS),
        expert=rng.choice([None, *EXPERTS]),
        need_maturity=rng.choice([None, "low", "high"]),
        answer_due=rng.choice([None, date(2026, 2, rng.randrange(1, 28))]),
        description=rng.choice([None, "needs a quick answer"]),
        amount=_amount(rng),
    )


def _card_change(rng: random.Random, model: _Model) -> dict[str, Any] | None:
    options: list[tuple[str, Any]] = [
        ("title", f"Appraisal of a {rng.choice(WORDS)} #{rng.randrange(100)}"),
        ("manager", rng.choice(MANAGERS)),
        ("source", rng.choice(SOURCES)),
        ("expert", rng.choice([None, *EXPERTS])),
        ("need_maturity", rng.choice([None, "low", "medium", "high"])),
        ("answer_due", rng.choice([None, date(2026, 3, rng.randrange(1, 28))])),
        ("description", rng.choice([None, "call back", "documents sent"])),
        ("company_name", f"Company {rng.randrange(1000)}"),
    ]
    if not model.components:
        options.append(("amount", _amount(rng)))
    rng.shuffle(options)
    changes = dict(options[: rng.randint(1, 3)])
    if all(model.card.get(k) == v for k, v in changes.items()):
        return None  # nothing would change: the rules refuse it
    return changes


def _cost(rng: random.Random, model: _Model) -> tuple[lead.CostComponent, ...] | None:
    names = rng.sample(["survey", "report", "travel", "expert fee", "court fee"], rng.randint(1, 3))
    parts = tuple(lead.CostComponent(n, _amount(rng)) for n in names)
    return None if parts == model.components else parts


def _next_command(rng: random.Random, model: _Model) -> lead.LeadCommand | None:
    """A command the lead accepts in its modelled state (None: try another lead)."""
    paused = model.status == "paused"
    funnel = FUNNELS[model.funnel]
    kinds = ["card", "cost", "close"] + (
        ["resume", "resume", "resume"]
        if paused
        else ["move", "move", "move", "move", "transfer", "pause", "pause", "assess", "qualify"]
    )
    kind = rng.choice(kinds)
    if kind == "card":
        changes = _card_change(rng, model)
        return None if changes is None else lead.UpdateLeadCard(changes)
    if kind == "cost":
        parts = _cost(rng, model)
        return None if parts is None else lead.SetLeadCostBreakdown(parts)
    if kind == "close":
        if rng.random() < 0.6:
            return None  # keep most leads alive a while
        outcome = rng.choice(["won", "lost"])
        reason: str | None = (
            rng.choice([None, "price"]) if outcome == "won" else "went to a competitor"
        )
        return lead.CloseLead(outcome, reason)
    if kind == "resume":
        return lead.ResumeLead()
    if kind == "move":
        stage = rng.choice([s.id for s in funnel.stages if s.id != model.stage])
        return lead.MoveLeadToStage(stage)
    if kind == "transfer":
        target = FUNNELS[rng.choice([f for f in sorted(FUNNELS) if f != model.funnel])]
        to_stage: str | None = rng.choice([None, *[s.id for s in target.stages]])
        return lead.TransferLead(target.id, to_stage)
    if kind == "pause":
        return lead.PauseLead(rng.choice(["client on holiday", "waiting for documents"]))
    if kind == "assess":
        hours = Decimal(rng.randrange(1, 4000)) / 100
        return lead.RecordLeadAssessment(rng.choice(EXPERTS), "feasible", hours)
    # qualify
    if not model.assessed:
        return None
    if rng.random() < 0.25:
        return lead.QualifyLead(False, "out of our scope")
    if model.quality is True:
        return None
    return lead.QualifyLead(True, None)


def _evolve_model(model: _Model, command: lead.LeadCommand) -> None:
    match command:
        case lead.UpdateLeadCard(changes=changes):
            model.card.update(changes)
        case lead.SetLeadCostBreakdown(components=components):
            model.components = components
            model.card["amount"] = sum((c.amount for c in components), Decimal("0.00"))
        case lead.MoveLeadToStage(stage=stage):
            model.stage = stage
        case lead.TransferLead(funnel=funnel, stage=stage):
            model.funnel = funnel
            model.stage = stage or FUNNELS[funnel].first_stage.id
        case lead.PauseLead():
            model.status = "paused"
        case lead.ResumeLead():
            model.status = "open"
        case lead.RecordLeadAssessment():
            model.assessed = True
        case lead.QualifyLead(quality=quality):
            model.quality = quality
            if not quality:
                model.status = "non_quality"
        case lead.CloseLead(outcome=outcome):
            model.status = outcome


def generate_history(
    seed: int,
    *,
    leads: int = 20,
    steps: int = 150,
    companies: int = 5,
    start: datetime = EPOCH,
    max_gap_seconds: int = 3 * 24 * 3600,
) -> list[Step]:
    """A random valid history: ``leads`` creations and about ``steps`` commands in all.

    Times strictly increase from ``start`` (gaps of 1 s to ``max_gap_seconds``, with
    microseconds, as a server clock has them); company
    ids come from a pool of ``companies`` so some leads are repeat.
    """
    rng = random.Random(seed)
    company_ids = [f"C-{seed % 997}-{i}" for i in range(companies)]
    history: list[Step] = []
    models: dict[UUID, _Model] = {}
    created = 0
    at = start
    attempts = 0
    while (created < leads or len(history) < steps) and attempts < steps * 20:
        attempts += 1
        live = [lid for lid, m in models.items() if not m.closed]
        at_next = at + timedelta(
            seconds=rng.randint(1, max_gap_seconds), microseconds=rng.randrange(1_000_000)
        )
        if created < leads and (not live or rng.random() < max(0.15, leads / max(steps, 1))):
            command = _create(rng, company_ids)
            models[command.lead_id] = _Model(
                command.funnel,
                FUNNELS[command.funnel].first_stage.id,
                card={f: getattr(command, f) for f in lead.CARD_FIELDS},
            )
            created += 1
            at = at_next
            history.append(Step(at, command.lead_id, command, rng.choice(ACTORS)))
            continue
        if not live:
            if created >= leads:
                break
            continue
        lead_id = rng.choice(live)
        model = models[lead_id]
        lead_command = _next_command(rng, model)
        if lead_command is None:
            continue
        _evolve_model(model, lead_command)
        at = at_next
        history.append(Step(at, lead_id, lead_command, rng.choice(ACTORS)))
    return history


def histories(
    *, min_leads: int = 1, max_leads: int = 25, max_steps: int = 200
) -> st.SearchStrategy[list[Step]]:
    """Hypothesis strategy: random valid histories (seeded, so shrinking works by size)."""

    @st.composite
    def build(draw: st.DrawFn) -> list[Step]:
        n_leads = draw(st.integers(min_leads, max_leads))
        n_steps = draw(st.integers(n_leads, max(n_leads, max_steps)))
        seed = draw(st.integers(0, 2**32 - 1))
        return generate_history(seed, leads=n_leads, steps=n_steps)

    return build()


def apply_history(
    store: EventStore,
    history: Iterable[Step],
    *,
    funnels: FunnelCatalog = FUNNELS,
    clock: ManualClock | None = None,
) -> list[CommandResult]:
    """Run every step through the handlers at its time; a refused step raises."""
    clock = clock or ManualClock()
    results: list[CommandResult] = []
    for step in history:
        clock.set(step.at)
        ctx = CommandContext.new(actor=step.actor, clock=clock)
        if isinstance(step.command, lead.CreateLead):
            results.append(create_lead(store, funnels, step.command, ctx))
        else:
            results.append(handle_lead_command(store, funnels, step.lead_id, step.command, ctx))
    return results


def chunks(history: Sequence[Step], sizes: Iterable[int]) -> list[Sequence[Step]]:
    """Split a history into consecutive pieces of the given sizes (the rest last)."""
    out: list[Sequence[Step]] = []
    index = 0
    for size in sizes:
        if index >= len(history):
            break
        out.append(history[index : index + size])
        index += size
    if index < len(history):
        out.append(history[index:])
    return out


def fold_in_random_pages(
    store: EventStore,
    db: Any,
    history: Sequence[Step],
    data: st.DataObject,
    projections: Callable[[], Sequence[Any]],
) -> None:
    """Append the history in random pieces and fold after each in random page sizes, then
    catch up (what a live projector does): the read models a rebuild must equal."""
    from projections.projector import Projector

    sizes = data.draw(st.lists(st.integers(1, 60), min_size=1, max_size=5), label="appends")
    for piece in chunks(history, sizes):
        apply_history(store, piece)
        for k in data.draw(st.lists(st.integers(1, 50), max_size=3), label="pages"):
            Projector(store, db, projections(), page_size=k).run_once()
    Projector(store, db, projections(), page_size=data.draw(st.integers(1, 300))).catch_up()


def put_managers_in_departments(cursor: Any, managers: Sequence[str]) -> None:
    """The directory's users: the managers alternately in sales and retail."""
    for i, manager in enumerate(managers):
        cursor.execute(
            "INSERT INTO users (username, department, active) VALUES (?, ?, TRUE)",
            [manager, "sales" if i % 2 == 0 else "retail"],
        )

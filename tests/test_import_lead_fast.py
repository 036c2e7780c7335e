"""The Lead decider's import path, ``import_lead``, answers exactly as its definition,
``import_lead_by_steps`` (the card, then each step's decide and evolve), for any row: the
same ``LeadImported`` with its fields in the same order (the stored bytes follow it), or
the same refusal (type, field or rule, message). Rows are random, valid and invalid:
unknown funnels and stages, bad statuses, blank or missing reasons, instants out of
order or without a zone, bad amounts, currencies, texts and answer dates. Also:
``import_command`` makes the very ``ImportLead`` its constructor makes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregates.base import CommandMeta
from aggregates.errors import DomainError, InvalidValue, RuleViolation
from aggregates.lead import (
    ImportLead,
    LeadStatus,
    _import_status,
    import_command,
    import_lead,
    import_lead_by_steps,
)
from aggregates.values import MAX_TEXT
from event_store.bulk import encode
from tests.gwt import FUNNELS, T0

SETTINGS = settings(max_examples=400, deadline=None)
LEAD_ID = UUID("00000000-0000-4000-8000-0000000000aa")
STAGES = sorted({s.id for f in FUNNELS.values() for s in f.stages})
NOW = T0 + timedelta(days=30)
MSK = timezone(timedelta(hours=3))


def _mostly(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
    """A valid value nine times in ten, so that rows reach the later checks too."""
    return st.integers(0, 9).flatmap(lambda n: st.sampled_from(invalid if n == 0 else valid))


LONG = "x" * (MAX_TEXT + 1)
texts = _mostly(["Acme", " padded "], [None, "", "  ", LONG, 7])
optional_texts = _mostly([None, "", "note", " note "], [LONG, 5])
offsets = _mostly([None, *(timedelta(days=d) for d in (0, 1, 3, 40, 300))], [timedelta(days=-1)])


def _instant(base: datetime, offset: timedelta | None, naive: bool) -> datetime | None:
    if offset is None:
        return None
    moment = base + offset
    return moment.replace(tzinfo=None) if naive else moment


@st.composite
def rows(draw: st.DrawFn) -> ImportLead:
    created = draw(
        _mostly(
            [
                T0 - timedelta(days=900),
                T0,
                datetime(2024, 3, 1, 12, tzinfo=timezone(timedelta(hours=3))),
            ],
            [NOW + timedelta(days=2), datetime(1999, 12, 31, tzinfo=UTC), datetime(2024, 3, 1, 12)],
        )
    )
    naive = draw(st.integers(0, 19)) == 0
    return ImportLead(
        lead_id=LEAD_ID,
        funnel=draw(_mostly([*FUNNELS], ["wholesale"])),
        title=draw(texts),
        company_name=draw(texts),
        source=draw(_mostly(["website"], ["", None])),
        manager=draw(_mostly(["anna.sales"], [" ", None])),
        created_at=created,
        stage=draw(_mostly([None, *STAGES], ["nowhere", " new"])),
        status=draw(_mostly([s.value for s in LeadStatus], ["closed", "OPEN"])),
        company_id=draw(_mostly([None, "", "7701234567"], [77])),
        expert=draw(optional_texts),
        need_maturity=draw(optional_texts),
        answer_due=draw(_mostly([None, date(2025, 6, 1)], [date(1999, 1, 1), date(2040, 1, 1)])),
        description=draw(optional_texts),
        amount=draw(
            _mostly(
                [Decimal(0), Decimal("125000.50")],
                [Decimal("-1"), Decimal("1.005"), Decimal(10**16)],
            )
        ),
        currency=draw(_mostly(["RUB", "USD"], ["rub", "RU"])),
        contact=draw(optional_texts),
        assessment_required=draw(st.sampled_from([None, True, False])),
        quality=draw(st.sampled_from([None, True, False])),
        reason=draw(st.sampled_from([None, "", "  ", "price", " client away "])),
        stage_entered_at=_instant(created, draw(offsets), naive),
        closed_at=_instant(created, draw(offsets), naive),
        paused_since=_instant(created, draw(offsets), naive),
        external_id=draw(_mostly([None, "", "B-1"], [LONG])),
    )


def _answer(decider: Any, row: ImportLead, meta: CommandMeta, known: bool) -> Any:
    try:
        event = decider(row, FUNNELS, meta, company_known=known)
    except DomainError as refusal:
        detail = refusal.field if isinstance(refusal, InvalidValue) else None
        rule = refusal.rule if isinstance(refusal, RuleViolation) else None
        return ("refused", type(refusal), detail, rule, refusal.message)
    return ("imported", type(event), list(event.__dict__.items()))


def _meta(cause: str | None) -> CommandMeta:
    return CommandMeta(
        actor="importer",
        at=NOW,
        command_id=UUID("00000000-0000-4000-8000-0000000000bb"),
        actor_role="admin" if cause else None,
        command="import-leads" if cause else None,
        cause=cause,
    )


@SETTINGS
@given(row=rows(), known=st.booleans(), cause=st.sampled_from([None, "import f.csv row 2"]))
def test_the_import_path_answers_as_the_steps(row: ImportLead, known: bool, cause: str) -> None:
    meta = _meta(cause)
    assert _answer(import_lead, row, meta, known) == _answer(import_lead_by_steps, row, meta, known)


def test_the_rows_cover_both_answers() -> None:
    """The strategy reaches imports and refusals (else the property proves little)."""
    accepted = 0
    refused = 0

    @settings(max_examples=300, deadline=None)
    @given(row=rows())
    def count(row: ImportLead) -> None:
        nonlocal accepted, refused
        if _answer(import_lead, row, _meta(None), False)[0] == "imported":
            accepted += 1
        else:
            refused += 1

    count()
    assert accepted > 0
    assert refused > 0


def test_an_imported_event_is_stored_as_the_codec_writes_it() -> None:
    from leadledger.wiring import event_codec

    codec = event_codec()
    row = ImportLead(
        lead_id=LEAD_ID,
        funnel="out_of_court",
        title="Supply contract",
        company_name="Acme",
        source="website",
        manager="anna.sales",
        created_at=T0,
        stage="proposal_sent",
        status="lost",
        reason="price",
        amount=Decimal("1200.50"),
    )
    event = import_lead(row, FUNNELS, _meta("import f.csv row 2"), company_known=False)
    store: Any = SimpleNamespace(codec=codec)  # encode reads the store's codec only
    assert encode(store, LEAD_ID, 1, event)[3] == codec.encode(event)
    assert codec.decode("LeadImported", codec.encode(event)) == event


@SETTINGS
@given(
    values=st.dictionaries(
        st.sampled_from(
            ["funnel", "title", "status", "amount", "quality", "unknown_field", "lead_id"]
        ),
        st.sampled_from(["x", None, Decimal(3), True]),
    ),
    required=st.booleans(),
)
def test_import_command_is_the_constructor(values: dict[str, Any], required: bool) -> None:
    row = dict(values)
    if required:
        for name in ("funnel", "title", "company_name", "source", "manager"):
            row.setdefault(name, "v")
        row["created_at"] = T0
    expected: Any
    try:
        expected = ImportLead(lead_id=LEAD_ID, **row)
    except TypeError as exc:
        expected = exc
    if isinstance(expected, TypeError):
        with pytest.raises(TypeError, match=re.escape(str(expected))):
            import_command(LEAD_ID, row)
        return
    made = import_command(LEAD_ID, row)
    assert made == expected
    assert list(made.__dict__.items()) == list(expected.__dict__.items())


@given(st.sampled_from([s.value for s in LeadStatus]) | st.text(max_size=12))
def test_an_imported_status_is_the_enums_answer(value: str) -> None:
    """``_import_status`` looks the text up in a dict: the enum's own answer, or the same
    refusal."""
    try:
        expected: LeadStatus | str = LeadStatus(value)
    except ValueError:
        expected = "refused"
    try:
        got: LeadStatus | str = _import_status(value)
    except InvalidValue as exc:
        got = f"refused {exc.field}"
        expected = f"{expected} status"
    assert got == expected
    assert type(got) is type(expected)

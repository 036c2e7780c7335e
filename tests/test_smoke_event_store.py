"""The event store appends and reads back on both back-ends."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from aggregates.base import CommandMeta
from aggregates.funnels import FunnelCatalog
from aggregates.lead import CreateLead, create
from event_store import ConcurrencyError, EventStore, NewEvent
from leadledger.settings import DEFAULT_FUNNELS_FILE
from leadledger.wiring import load_funnels

FUNNELS: FunnelCatalog = load_funnels(DEFAULT_FUNNELS_FILE)


def _created(lead_id=None):
    lead_id = lead_id or uuid4()
    meta = CommandMeta(actor="a", at=datetime(2026, 1, 1, tzinfo=UTC), command_id=uuid4())
    cmd = CreateLead(lead_id, "court", "t", "c", "s", "m")
    return lead_id, create(cmd, FUNNELS, meta, company_known=False)


def test_append_then_load_returns_event_with_position(store: EventStore) -> None:
    lead_id, event = _created()
    positions = store.append([NewEvent(lead_id, 1, event)])
    loaded = store.load(lead_id)
    assert [r.position for r in loaded] == positions
    assert loaded[0].event == event
    assert store.last_position() == positions[0]


def test_duplicate_version_is_a_concurrency_error(store: EventStore) -> None:
    lead_id, event = _created()
    store.append([NewEvent(lead_id, 1, event)])
    with pytest.raises(ConcurrencyError):
        store.append([NewEvent(lead_id, 1, event)])
    assert len(store.load(lead_id)) == 1

"""What the revenue-cap race tests share (tests/test_limits_postgres.py races deal invoices,
tests/test_revenue_ledger.py deal and project invoices, on one organisation's yearly
ledger): the rules with a simplified-tax organisation and its cap, a platform and an API
on the real PostgreSQL with them, and the race's verdict."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from aggregates import limits
from leadledger.wiring import Platform
from read_api.app import create_app
from tests.conftest import ACTOR, PlatformFactory

ORGANISATIONS = """\
[organisations.main]
name = "LeadLedger Services LLC"
tax_regime = "general"

[organisations.simplified]
name = "LeadLedger Expert IE"
tax_regime = "simplified"
yearly_revenue_cap = "{cap}"
"""
"""The two organisations of the race: ``simplified`` has the yearly cap."""


def capped_rules(cap: Decimal, before: str = "") -> str:
    """A rules.toml with ``before`` (other sections) and the capped organisation."""
    return before + ORGANISATIONS.format(cap=cap)


def pg_platform_with(
    make_platform: PlatformFactory, pg_schema_url: str, tmp_path: Path, rules: str
) -> Platform:
    """A platform on the real PostgreSQL with these rules."""
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(rules)
    return make_platform(event_store_url=pg_schema_url, rules_file=rules_file)


def api_of(platform: Platform) -> Iterator[TestClient]:
    """The API over the platform (no background tasks), as the default actor."""
    app = create_app(platform, background=False, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as client:
        yield client


def accepted_within_the_cap(
    responses: Sequence[Any], platform: Platform, cap: Decimal, amount: Decimal, year: int
) -> tuple[list[int], list[Any]]:
    """The race's verdict: every answer is accepted or refused by the cap's rule, exactly
    as many as fit under the cap are accepted, and the ledger books them one version each
    on a running total that grows by ``amount``; the accepted racers and the bookings."""
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 201, 409}, [r.text for r in responses]
    accepted = [i for i, code in enumerate(codes) if code in (200, 201)]
    for i, code in enumerate(codes):
        if code == 409:
            body = responses[i].json()
            assert body["rule"] == "simplified_tax_revenue_cap", body
    assert len(accepted) == math.floor(cap / amount)
    ledger = platform.store.load(limits.revenue_stream_id("simplified", year))
    bookings = [r.event for r in ledger]
    assert all(isinstance(b, limits.RevenueBooked | limits.ProjectRevenueBooked) for b in bookings)
    assert [getattr(b, "total", None) for b in bookings] == [
        amount * (n + 1) for n in range(len(accepted))
    ]
    assert [r.version for r in ledger] == list(range(1, len(accepted) + 1))
    return accepted, bookings

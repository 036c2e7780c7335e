"""Read models of deals, hand-off requests, contractors, alerts and client assignments."""

from __future__ import annotations

from aggregates.rules import Rules
from projections.base import Projection


def deal_projections(rules: Rules) -> list[Projection]:
    return []

"""The company registry: one stream per client company id, started by its first lead.

Creating a lead with a ``company_id`` appends the lead's first event and, when the
company is not registered yet, ``CompanyRegistered`` in one atomic write. Two racing
leads for one new company cannot both register it, so exactly one of them is **new**
and every later one is **repeat**.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid5

from aggregates.base import CommandMeta, DomainEvent

COMPANY_NAMESPACE = UUID("6f1d1c2e-93a4-4d0b-9d57-2a0d3f6c8b11")


def company_stream_id(company_id: str) -> UUID:
    return uuid5(COMPANY_NAMESPACE, f"company:{company_id}")


@dataclass(frozen=True, kw_only=True)
class CompanyRegistered(DomainEvent):
    company_id: str
    company_name: str
    first_lead_id: UUID


def register(
    company_id: str, company_name: str, first_lead_id: UUID, meta: CommandMeta
) -> CompanyRegistered:
    return CompanyRegistered(
        **meta.event_fields(),
        company_id=company_id,
        company_name=company_name,
        first_lead_id=first_lead_id,
    )


COMPANY_EVENT_TYPES: tuple[type[DomainEvent], ...] = (CompanyRegistered,)

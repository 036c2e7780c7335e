"""Public events of the monthly sales plans.

Published on the ``sales_plan`` aggregate type: one stream per manager and month.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import CurrencyCode, Money, Month, PublicPayload


class SalesPlanSetV1(PublicPayload):
    """A head (for their department's people) or top management set or changed a
    manager's sales plan for a month; the plan is approved by management and a manager
    never changes it (seed 004)."""

    manager: str = Field(description="The manager the plan is for.")
    month: Month
    amount: Money = Field(description="The amount of won deals planned for the month.")
    currency: CurrencyCode
    deals: int | None = Field(description="The number of deals to win; null: not planned.")
    department: str | None = Field(description="The manager's department when it was set.")
    previous_amount: Money | None = Field(
        description="The plan's amount until this event; null for the month's first plan."
    )
    previous_deals: int | None = Field(description="The plan's deals until this event.")
    reason: str = Field(description="Why the plan was set or changed.")


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "sales_plan": (SalesPlanSetV1,),
}
"""The models of this module by aggregate type, every version of every event type."""

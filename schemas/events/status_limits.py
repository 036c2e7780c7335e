"""Public events of the time limits of stages and statuses set by hand.

Published on the ``status_limit`` aggregate type: one stream per kind (lead, deal,
project), funnel and stage or status.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.events.base import PublicPayload


class StatusLimitSetV1(PublicPayload):
    """An administrator or top management set, changed or removed the time limit of a
    lead or deal stage, or of a project status; it is in force from this event on."""

    kind: Literal["lead", "deal", "project"]
    funnel: str | None = Field(description="The lead or deal funnel; null for a project status.")
    stage: str = Field(description="The stage (leads, deals) or the status (projects).")
    limit_hours: float | None = Field(description="The limit from now on; null: no limit.")
    previous_hours: float | None = Field(
        description="The limit in force until now (the configured one before the first)."
    )
    reason: str | None = None


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "status_limit": (StatusLimitSetV1,),
}
"""The models of this module by aggregate type, every version of every event type."""

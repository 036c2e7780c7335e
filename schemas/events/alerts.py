"""Public events of the users' alert inboxes.

Published on the ``alert_inbox`` aggregate type: one stream per user (its id derived from
the username). An alert itself is the event that raised it (a reminder, an escalation, an
approval request...), published on its subject's aggregate type; reading it is this.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import PublicPayload


class AlertsReadV1(PublicPayload):
    """A user marked alerts addressed to them read (only those not read before)."""

    username: str = Field(description="The reader: the recipient of every alert named.")
    alert_ids: list[int] = Field(
        description="The alerts newly read, ascending: an alert's id is the position of "
        "the event that raised it in the log."
    )
    up_to: int | None = Field(
        default=None,
        description="When the reader marked everything up to a position read: that position.",
    )


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "alert_inbox": (AlertsReadV1,),
}
"""The models of this module by aggregate type, every version of every event type."""

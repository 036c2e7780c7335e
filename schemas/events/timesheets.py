"""Public events of a person's day across all projects (at most 24 hours logged).

Published on the ``person_day`` aggregate type: one stream per person and day.
"""

from __future__ import annotations

from pydantic import Field

from schemas.events.base import Day, DecimalString, Hours, Id, PublicPayload


class PersonDayHoursBookedV1(PublicPayload):
    """Hours logged or corrected on a project were booked on the person's day."""

    person: str
    day: Day
    project_id: Id
    entry_id: Id = Field(description="The time entry on the project.")
    change: DecimalString = Field(description="Hours added (a correction down is negative).")
    total: Hours = Field(
        description="The person's hours that day across all projects, this change included."
    )


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "person_day": (PersonDayHoursBookedV1,),
}
"""The models of this module by aggregate type, every version of every event type."""

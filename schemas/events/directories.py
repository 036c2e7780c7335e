"""Public events of the shared directories (courts, opponents, consultants, lawyers,
experts, signatories: the kinds ``leadledger/config/directories.toml`` declares).

Published on the ``directory_entry`` aggregate type; the aggregate id is the entry id.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.events.base import Id, PublicPayload

Target = Literal["lead", "project"]


class DirectoryEntryRegisteredV1(PublicPayload):
    """An entry was added to a directory."""

    entry_id: Id
    kind: str = Field(description="The directory: court, opponent, signatory, ...")
    title: str = Field(description="The value of the kind's title field (its name).")
    fields: dict[str, str | None] = Field(description="Every field the kind declares.")


class DirectoryEntryUpdatedV1(PublicPayload):
    """An entry's fields were edited (all of them after the edit, and which changed)."""

    kind: str
    title: str
    fields: dict[str, str | None]
    changed: tuple[str, ...]


class DirectoryEntryLinkedV1(PublicPayload):
    """The entry was linked to a lead or a project with a role (a court that sent the
    lead, a signatory of the project)."""

    kind: str
    target: Target
    target_id: Id
    role: str


class DirectoryEntryUnlinkedV1(PublicPayload):
    """A link of the entry to a lead or a project was removed."""

    kind: str
    target: Target
    target_id: Id
    role: str


PUBLISHED: dict[str, tuple[type[PublicPayload], ...]] = {
    "directory_entry": (
        DirectoryEntryRegisteredV1,
        DirectoryEntryUpdatedV1,
        DirectoryEntryLinkedV1,
        DirectoryEntryUnlinkedV1,
    ),
}
"""The models of this module by aggregate type, every version of every event type."""

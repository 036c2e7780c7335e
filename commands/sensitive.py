"""Sensitive information handlers: set a lead's section, read it (recorded), erase a
data subject.

The plaintext exists only in the request that carries it and the response that shows
it: it is sealed under the data subject's key before anything is appended.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID, uuid4

import orjson

from aggregates import sensitive
from aggregates.sensitive import SensitiveInfo
from commands.context import CommandContext, CommandResult
from commands.execution import execute
from commands.leads import load_lead
from event_store import EventStore, NewEvent, RecordedEvent
from event_store.keys import KeyStore, SensitiveCipher


def _section_records(store: EventStore, lead_id: UUID) -> list[RecordedEvent]:
    return store.load(sensitive.section_stream_id(lead_id))


def set_sensitive_info(
    store: EventStore,
    keys: KeyStore,
    lead_id: UUID,
    info: SensitiveInfo,
    ctx: CommandContext,
) -> CommandResult:
    """Replace the lead's section (the lead's own guard applies: its manager, their
    head or top management)."""
    state, _ = load_lead(store, lead_id)
    ctx.check(state)
    subject = sensitive.subject_of(lead_id, state.company_id)
    plaintext = orjson.dumps({"notes": info.notes, "fields": info.fields})
    if ctx.idempotency_key is not None:
        # a retry must carry the same content: fingerprint it under the subject's key
        # (never the plaintext itself, and gone with the key on erasure)
        current = keys.current_key(subject, create=True)
        assert current is not None
        content = hmac.new(current[1], plaintext, hashlib.sha256).hexdigest()
        fingerprint = hashlib.sha256(f"{ctx.request_hash}:{content}".encode()).hexdigest()
        ctx = replace(ctx, request_hash=fingerprint[:32])
    sealed = SensitiveCipher(keys).seal(subject, plaintext, sensitive.seal_context(lead_id))
    stream_id = sensitive.section_stream_id(lead_id)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        event = sensitive.set_section(lead_id, subject, sealed, ctx.meta)
        return [NewEvent(stream_id, len(history) + 1, event)]

    return execute(store, ctx, stream_id, decide, what="sensitive information", must_exist=None)


@dataclass(frozen=True)
class SectionRead:
    outcome: str
    """``shown``, ``erased`` or ``empty``."""
    info: SensitiveInfo | None
    subject_id: str
    updated_at: datetime | None
    updated_by: str | None
    erased_at: datetime | None


def read_sensitive_info(
    store: EventStore, keys: KeyStore, lead_id: UUID, ctx: CommandContext
) -> SectionRead:
    """Open the section for the actor, recording the read before showing anything."""
    state, _ = load_lead(store, lead_id)
    ctx.check(state)
    section = sensitive.fold([r.event for r in _section_records(store, lead_id)])
    subject = section.subject_id if section else sensitive.subject_of(lead_id, state.company_id)
    info: SensitiveInfo | None = None
    erased_at = keys.erased(subject)
    if section is None:
        outcome = "empty"
    else:
        opened = SensitiveCipher(keys).open(section.sealed, sensitive.seal_context(lead_id))
        if opened is None:
            outcome = "erased"
        else:
            data = orjson.loads(opened)
            info = SensitiveInfo(data["notes"], data["fields"])
            outcome = "shown"
            erased_at = None  # a newer key after an erasure: this section is readable
    viewed = sensitive.LeadSensitiveInfoViewed(
        **ctx.meta.event_fields(), lead_id=lead_id, subject_id=subject, outcome=outcome
    )
    store.append([NewEvent(uuid4(), 1, viewed)])
    return SectionRead(
        outcome,
        info,
        subject,
        section.updated_at if section else None,
        section.updated_by if section else None,
        erased_at if outcome != "shown" else None,
    )


def erase_subject(
    store: EventStore, keys: KeyStore, subject_id: str, ctx: CommandContext
) -> tuple[CommandResult, bool]:
    """Destroy the subject's keys, then record the erasure on the subject's stream; and
    whether this call destroyed any key."""
    destroyed = keys.erase(subject_id, ctx.actor)
    stream_id = sensitive.subject_stream_id(subject_id)

    def decide(history: list[RecordedEvent]) -> Sequence[NewEvent]:
        event = sensitive.DataSubjectErased(
            **ctx.meta.event_fields(), subject_id=subject_id, keys_destroyed=destroyed
        )
        return [NewEvent(stream_id, len(history) + 1, event)]

    result = execute(store, ctx, stream_id, decide, what="data subject", must_exist=None)
    return result, destroyed

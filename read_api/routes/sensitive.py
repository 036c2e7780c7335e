"""A lead's sensitive information, who read it, and erasing a data subject.

Only the lead's manager, their head and top management set or read the section; every
read is recorded before anything is shown. Auditors and administrators see who read it,
never what. Erasure (administrators) destroys the data subject's key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from aggregates import sensitive
from commands.sensitive import erase_subject, read_sensitive_info, set_sensitive_info
from queries.sensitive import list_sensitive_reads
from read_api.deps import CommandHeadersDep, PlatformDep, ReadCursor, mark_accepted
from read_api.errors import BadRequestValue
from schemas.leads import CommandAccepted
from schemas.users import (
    ErasureAccepted,
    SensitiveInfoRequest,
    SensitiveInfoView,
    SensitiveReadPage,
    SubjectView,
)

router = APIRouter(tags=["sensitive information"])
Headers = CommandHeadersDep
MAX_SUBJECT = 300


@router.put("/leads/{lead_id}/sensitive", response_model=CommandAccepted)
def set_info(
    lead_id: UUID,
    body: SensitiveInfoRequest,
    headers: Headers,
    platform: PlatformDep,
    response: Response,
) -> dict[str, Any]:
    """Replace the lead's sensitive-information section (sealed under the data
    subject's key before it is stored; never in read models, exports, feed or Kafka)."""
    info = sensitive.clean(body.notes, body.fields)
    # the request fingerprint for Idempotency-Key must not hold the plaintext either
    ctx = headers.context(platform, f"sensitive:{lead_id}", {"lead_id": str(lead_id)})
    result = set_sensitive_info(platform.store, platform.keys, lead_id, info, ctx)
    mark_accepted(result, response)
    return {"lead_id": lead_id, "version": result.version, "position": result.position}


@router.get("/leads/{lead_id}/sensitive", response_model=SensitiveInfoView)
def get_info(
    lead_id: UUID, headers: Headers, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """The section, for the lead's manager, their head and top management. The read is
    recorded (who, when, which lead) before it is answered."""
    ctx = headers.context(platform, f"sensitive-read:{lead_id}", None)
    read = read_sensitive_info(platform.store, platform.keys, lead_id, ctx)
    response.headers["Cache-Control"] = "no-store"
    return {
        "lead_id": str(lead_id),
        "status": read.outcome,
        "notes": read.info.notes if read.info else None,
        "fields": read.info.fields if read.info else None,
        "subject_id": read.subject_id,
        "updated_at": read.updated_at,
        "updated_by": read.updated_by,
        "erased_at": read.erased_at,
    }


@router.get("/leads/{lead_id}/sensitive/reads", response_model=SensitiveReadPage)
def list_reads(
    lead_id: UUID,
    cursor: ReadCursor,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> dict[str, Any]:
    """Who read the lead's sensitive section and when, newest first (auditors)."""
    items, total = list_sensitive_reads(cursor, str(lead_id), limit, offset)
    return {
        "lead_id": str(lead_id),
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
    }


SUBJECT = re.compile(
    r"^(company:[^\x00-\x1f\x7f]+|lead:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})$"
)


def _subject(subject_id: str) -> str:
    if len(subject_id) > MAX_SUBJECT or not SUBJECT.match(subject_id):
        raise BadRequestValue(
            "subject_id",
            f"must be company:<company id> or lead:<lead id>, at most {MAX_SUBJECT} "
            "characters, without control characters",
        )
    return subject_id


@router.get("/subjects/{subject_id}", response_model=SubjectView)
def get_subject(subject_id: str, platform: PlatformDep) -> dict[str, Any]:
    """Whether a data subject (``company:<id>`` or ``lead:<id>``) was erased."""
    subject = _subject(subject_id)
    return {
        "subject_id": subject,
        "erased_at": platform.keys.erased(subject),
        "has_key": platform.keys.current_key(subject, create=False) is not None,
    }


@router.post("/subjects/{subject_id}/erasure", response_model=ErasureAccepted)
def erase(
    subject_id: str, headers: Headers, platform: PlatformDep, response: Response
) -> dict[str, Any]:
    """Erase a data subject: its key is destroyed, so its sensitive information is
    unreadable everywhere (old events and backups included); everything else replays.
    Irreversible. Repeating it is harmless."""
    subject = _subject(subject_id)
    ctx = headers.context(platform, f"erase:{subject}", {"subject_id": subject})
    result, destroyed = erase_subject(platform.store, platform.keys, subject, ctx)
    mark_accepted(result, response)
    return {"subject_id": subject, "keys_destroyed": destroyed, "position": result.position}

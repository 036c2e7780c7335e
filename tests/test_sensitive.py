"""A lead's sensitive-information section: who may set and read it, every read recorded,
the plaintext nowhere but in the request and the answer (read models, exports, the event
feed and SSE, the event store, Kafka, logs, published schemas), and crypto-shredding of
a data subject (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import duckdb
import httpx
import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from aggregates import sensitive
from aggregates.users import Principal
from event_store.keys import KEYS_FILE_NAME, KEYS_TABLE, SensitiveCipher
from leadledger.wiring import CommandSide, Platform, kafka_relay
from read_api import access
from read_api.app import create_app
from read_api.routes.exports import EXPORTABLE
from schemas.events.registry import CURRENT, topic_for
from tests.conftest import ACTOR, POSTGRES_URL, FakeClock, PlatformFactory, bearer, iso, serving
from tests.conftest import new_lead_body as lead_body
from tests.kafka_broker import Broker
from tests.kafka_reading import read_with_kafka_python

MARKER = "SECRET-MARKER-7f3a9c2e41d8"
"""Every plaintext of these tests carries this; it must never be found at rest or outside."""
NOTES = f"Owner is going through a divorce; call after 18:00 only. {MARKER}-notes"
FIELDS = {"decision maker": f"Ms. Q. Private {MARKER}-field", "phone": "+49 170 555 0101"}
NOTES_2 = f"Updated: the divorce is final. {MARKER}-notes-2"
FIELDS_2 = {"decision maker": f"Mr. R. Private {MARKER}-field-2"}
PUBLISHED = Path(__file__).parent.parent / "schemas" / "published"

COMPANY = "acme-42"
SUBJECT = f"company:{COMPANY}"
MANAGER = "mira.manager"
HEAD = "hugo.head"
OTHER_MANAGER = "oleg.other"

AS_MANAGER = bearer(MANAGER, "manager")
AS_HEAD = bearer(HEAD, "head", "sales")
AS_TOP = ACTOR  # anna.sales, top management
AS_AUDITOR = bearer("aude.auditor", "auditor")
AS_ADMIN = bearer("adam.admin", "admin")


# --------------------------------------------------------------------------- helpers


def _app(platform: Platform, background: bool = True) -> TestClient:
    return TestClient(create_app(platform, background=background, close_on_exit=False))


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform()


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with _app(platform) as c:
        yield c


def _new_lead(client: TestClient, **overrides: Any) -> UUID:
    body = {"manager": MANAGER, "company_id": COMPANY} | overrides
    response = client.post("/leads", json=lead_body(**body), headers=AS_TOP)
    assert response.status_code == 201, response.text
    return UUID(response.json()["lead_id"])


def _put(
    client: TestClient,
    lead_id: UUID,
    headers: dict[str, str],
    notes: Any = NOTES,
    fields: Any = None,
) -> httpx.Response:
    body = {"notes": notes, "fields": FIELDS if fields is None else fields}
    response: httpx.Response = client.put(f"/leads/{lead_id}/sensitive", json=body, headers=headers)
    return response


def _get(client: TestClient, lead_id: UUID, headers: dict[str, str]) -> httpx.Response:
    response: httpx.Response = client.get(f"/leads/{lead_id}/sensitive", headers=headers)
    return response


def _register(
    client: TestClient,
    username: str,
    role: str,
    department: str | None,
    wait: Platform | None = None,
) -> int:
    response = client.post(
        "/users",
        json={
            "username": username,
            "name": username.replace(".", " ").title(),
            "role": role,
            "department": department,
            "region": "Berlin",
        },
        headers=AS_ADMIN,
    )
    assert response.status_code == 201, response.text
    position: int = response.json()["position"]
    if wait is not None:  # a head's scope is read from the directory's read model
        assert wait.projector.wait_for(wait.store.last_position(), 10)
    return position


def _assert_shown(body: dict[str, Any], notes: str = NOTES, fields: Any = None) -> None:
    assert body["status"] == "shown", body
    assert body["notes"] == notes
    assert body["fields"] == (FIELDS if fields is None else fields)
    assert body["erased_at"] is None


def _no_marker(data: bytes | str, where: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    assert MARKER.encode() not in raw, f"the sensitive plaintext leaked into {where}"
    # the marker as UTF-16 too (e.g. a driver or a file format writing wide text)
    assert MARKER.encode("utf-16-le") not in raw, f"the plaintext leaked into {where} (UTF-16)"


def _file_bytes(path: Path) -> bytes:
    """A database file and its journals (-wal, -journal, .wal), as far as they exist."""
    data = b""
    for candidate in (path, *(Path(f"{path}{s}") for s in ("-wal", "-journal", ".wal"))):
        if candidate.exists():
            data += candidate.read_bytes()
    return data


def _sqlite_events_path(platform: Platform) -> Path:
    url = platform.settings.event_store_url
    assert url.startswith("sqlite:///"), url
    return Path(url.removeprefix("sqlite:///"))


def _sealed_tokens(platform: Platform, lead_id: UUID) -> list[str]:
    records = platform.store.load(sensitive.section_stream_id(lead_id))
    return [r.event.sealed for r in records if isinstance(r.event, sensitive.LeadSensitiveInfoSet)]


def _open(platform: Platform, token: str, lead_id: UUID) -> bytes | None:
    return SensitiveCipher(platform.keys).open(token, sensitive.seal_context(lead_id))


# ------------------------------------------------------------------- 1. who may


def test_the_manager_their_head_and_top_set_and_read_the_section_others_may_not(
    client: TestClient, platform: Platform
) -> None:
    lead_id = _new_lead(client)

    # the lead's manager sets it ...
    put = _put(client, lead_id, AS_MANAGER)
    assert put.status_code == 200, put.text
    accepted = put.json()
    assert accepted["lead_id"] == str(lead_id)
    assert accepted["version"] == 1
    assert accepted["position"] == platform.store.last_position()
    _no_marker(put.content, "the PUT's answer")

    # ... and reads it back
    got = _get(client, lead_id, AS_MANAGER)
    assert got.status_code == 200, got.text
    assert got.headers["Cache-Control"] == "no-store"
    body = got.json()
    _assert_shown(body)
    assert body["lead_id"] == str(lead_id)
    assert body["subject_id"] == SUBJECT
    assert body["updated_by"] == MANAGER

    # their head (the manager is in the head's department per the directory)
    _register(client, MANAGER, "manager", "sales", wait=platform)
    got = _get(client, lead_id, AS_HEAD)
    assert got.status_code == 200, got.text
    _assert_shown(got.json())
    put = _put(client, lead_id, AS_HEAD, notes=NOTES_2, fields=FIELDS_2)
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 2

    # top management sees the head's update
    got = _get(client, lead_id, AS_TOP)
    assert got.status_code == 200, got.text
    _assert_shown(got.json(), NOTES_2, FIELDS_2)
    assert got.json()["updated_by"] == HEAD
    assert _put(client, lead_id, AS_TOP).status_code == 200
    _assert_shown(_get(client, lead_id, AS_MANAGER).json())

    # another manager, and the head of another department: refused; they may not even
    # see the lead, so it does not exist for them (404, as for an unknown lead)
    for who in (bearer(OTHER_MANAGER, "manager"), bearer("vera.head", "head", "valuation")):
        before = platform.store.last_position()
        put = _put(client, lead_id, who, notes="overwritten", fields={})
        assert put.status_code == 404, put.text
        assert put.json()["detail"] == f"lead {lead_id} not found"
        got = _get(client, lead_id, who)
        assert got.status_code in (403, 404), got.text
        _no_marker(got.content, "a refused read")
        assert platform.store.last_position() == before, "a refused command appended"

    # roles that never see the section: refused at the door, on both
    for role, department in (
        ("analyst", None),
        ("auditor", None),
        ("pm", None),
        ("expert", "valuation"),
        ("department", "valuation"),
        ("admin", None),
    ):
        who = bearer(f"someone.{role}", role, department)
        before = platform.store.last_position()
        put = _put(client, lead_id, who, notes="overwritten", fields={})
        assert put.status_code == 403, (role, put.text)
        got = _get(client, lead_id, who)
        assert got.status_code == 403, (role, got.text)
        _no_marker(got.content, f"a {role}'s refused read")
        assert platform.store.last_position() == before, f"a {role}'s refusal appended"

    # nothing of the refused attempts changed the section
    _assert_shown(_get(client, lead_id, AS_TOP).json())


def test_a_lead_without_a_company_is_its_own_data_subject(client: TestClient) -> None:
    lead_id = _new_lead(client, company_id=None)
    got = _get(client, lead_id, AS_TOP)
    assert got.status_code == 200, got.text
    empty = got.json()
    assert empty["status"] == "empty"
    assert empty["notes"] is None
    assert empty["fields"] is None
    assert empty["subject_id"] == f"lead:{lead_id}"
    assert _put(client, lead_id, AS_MANAGER).status_code == 200
    shown = _get(client, lead_id, AS_MANAGER).json()
    _assert_shown(shown)
    assert shown["subject_id"] == f"lead:{lead_id}"


def test_a_head_sees_a_lead_whose_manager_joins_their_department_during_the_check(
    make_platform: PlatformFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector may commit the manager's UserRegistered while a head's read is
    checked: after the scope was read, before the projector's position is compared with
    the log's head. The read must then look again, not answer 404."""
    platform = make_platform()
    with _app(platform, background=False) as client:
        lead_id = _new_lead(client)
        assert _put(client, lead_id, AS_MANAGER).status_code == 200
        platform.projector.catch_up()
        _register(client, MANAGER, "manager", "sales")  # not projected yet
        original = access.scope_of

        def scope_then_projector_commits(on: Platform, principal: Principal) -> access.Scope:
            scope = original(on, principal)
            platform.projector.catch_up()
            return scope

        monkeypatch.setattr(access, "scope_of", scope_then_projector_commits)
        got = _get(client, lead_id, AS_HEAD)
        assert got.status_code == 200, got.text
        _assert_shown(got.json())


# ------------------------------------------------------------------- 2. read audit


def test_every_read_is_recorded_and_listed_newest_first_for_auditors(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    lead_id = _new_lead(client)
    other_lead = _new_lead(client, company_id="globex-7")
    assert _put(client, lead_id, AS_MANAGER).status_code == 200
    _register(client, MANAGER, "manager", "sales", wait=platform)

    read_at = []
    for who in (AS_MANAGER, AS_HEAD, AS_TOP):
        clock.advance(minutes=5)
        read_at.append(iso(clock.now))
        assert _get(client, lead_id, who).status_code == 200
    assert _get(client, other_lead, AS_TOP).json()["status"] == "empty"
    head = platform.store.last_position()

    reads = client.get(
        f"/leads/{lead_id}/sensitive/reads", params={"min_position": head}, headers=AS_AUDITOR
    )
    assert reads.status_code == 200, reads.text
    page = reads.json()
    _no_marker(reads.content, "the read log")
    assert page["total"] == 3
    items = page["items"]
    assert [(i["actor"], i["actor_role"], i["outcome"]) for i in items] == [
        ("anna.sales", "top", "shown"),
        (HEAD, "head", "shown"),
        (MANAGER, "manager", "shown"),
    ]
    assert [i["at"] for i in items] == read_at[::-1]
    positions = [i["position"] for i in items]
    assert positions == sorted(positions, reverse=True)

    # the other lead's read is its own
    other = client.get(f"/leads/{other_lead}/sensitive/reads", headers=AS_AUDITOR).json()
    assert [(i["actor"], i["outcome"]) for i in other["items"]] == [("anna.sales", "empty")]

    # top management may look too; the people who read the section may not
    assert client.get(f"/leads/{lead_id}/sensitive/reads", headers=AS_TOP).status_code == 200
    for who in (AS_MANAGER, AS_HEAD, bearer("ana.lyst", "analyst")):
        refused = client.get(f"/leads/{lead_id}/sensitive/reads", headers=who)
        assert refused.status_code == 403, refused.text


def test_administrators_do_not_read_who_read_a_section(
    client: TestClient, platform: Platform
) -> None:
    """Administrators run the platform, not its business: the read log is for top
    management and auditors."""
    lead_id = _new_lead(client)
    assert _put(client, lead_id, AS_MANAGER).status_code == 200
    assert _get(client, lead_id, AS_MANAGER).status_code == 200
    reads = client.get(f"/leads/{lead_id}/sensitive/reads", headers=AS_ADMIN)
    assert reads.status_code == 403, reads.text
    assert reads.json()["rule"] == "role_not_allowed"


# -------------------------------------------------------------------- 3. no leaks


@contextmanager
def _serving(platform: Platform) -> Iterator[str]:
    """The API on a real port (Server-Sent Events need a real streaming connection)."""
    with serving(platform, background=False) as port:
        yield f"http://127.0.0.1:{port}"


def _sse_until(url: str, last_position: int) -> bytes:
    """The raw SSE bytes from the start of the log up to the event at ``last_position``."""
    seen = b""
    deadline = time.monotonic() + 20
    with (
        httpx.Client(base_url=url, headers=AS_TOP, timeout=20) as http,
        http.stream("GET", "/events/stream", params={"after": 0}) as stream,
    ):
        assert stream.status_code == 200
        for chunk in stream.iter_bytes():
            seen += chunk
            if f"id: {last_position}\n".encode() in seen or time.monotonic() > deadline:
                break
    assert f"id: {last_position}\n".encode() in seen, "the SSE stream did not reach the head"
    return seen


def _sse_envelopes(raw: bytes) -> list[dict[str, Any]]:
    return [
        orjson.loads(line.removeprefix(b"data: "))
        for line in raw.split(b"\n")
        if line.startswith(b"data: ")
    ]


def _duckdb_text(path: Path) -> str:
    """Every row of every table of a (closed) DuckDB file, as text."""
    out: list[str] = []
    with duckdb.connect(str(path), read_only=True) as db:
        tables = db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        assert tables
        for schema, table in tables:
            rows = db.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            out.append(f"{schema}.{table}: {rows!r}")
    return "\n".join(out)


def test_the_plaintext_is_nowhere_but_in_the_answer(
    make_platform: PlatformFactory,
    kafka_broker: Broker,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    platform = make_platform(kafka_topic_prefix=topic_prefix)
    with _app(platform) as client:
        lead_id = _new_lead(client)
        _register(client, MANAGER, "manager", "sales", wait=platform)
        assert _put(client, lead_id, AS_MANAGER).status_code == 200
        _assert_shown(_get(client, lead_id, AS_MANAGER).json())
        _assert_shown(_get(client, lead_id, AS_HEAD).json())
        assert _put(client, lead_id, AS_TOP, notes=NOTES_2, fields=FIELDS_2).status_code == 200
        _assert_shown(_get(client, lead_id, AS_TOP).json(), NOTES_2, FIELDS_2)
        # an idempotent repeat and a refused attempt carry the plaintext too
        replay = {"Idempotency-Key": "k-1"} | AS_MANAGER
        assert _put(client, lead_id, replay).status_code == 200
        assert _put(client, lead_id, replay).status_code == 200
        assert _put(client, lead_id, bearer(OTHER_MANAGER, "manager")).status_code == 404
        head = platform.store.last_position()
        assert platform.projector.wait_for(head, 10)
        platform.projector.catch_up()
        tokens = _sealed_tokens(platform, lead_id)
        assert len(tokens) == 3  # the replay appended nothing

        # (b) exports: every table, in both formats
        for table in EXPORTABLE:
            for fmt in ("parquet", "csv"):
                exported = client.get(f"/exports/{table}", params={"format": fmt}, headers=AS_TOP)
                assert exported.status_code == 200, (table, fmt, exported.text)
                _no_marker(exported.content, f"the {fmt} export of {table}")
        csv = client.get("/exports/leads", params={"format": "csv"}, headers=AS_TOP).text
        assert str(lead_id) in csv  # the exports themselves are not empty

        # (c) the event feed, as top management (who sees every stream) and as an analyst
        feed = client.get("/events", params={"after": 0, "limit": 1000}, headers=AS_TOP)
        assert feed.status_code == 200
        _no_marker(feed.content, "the event feed")
        envelopes = feed.json()["items"]
        assert len(envelopes) == head
        set_envelopes = [e for e in envelopes if e["type"] == "LeadSensitiveInfoSet"]
        assert len(set_envelopes) == 3
        for envelope in set_envelopes:
            assert envelope["data"] == {"lead_id": str(lead_id), "subject_id": SUBJECT}
        for token in tokens:
            assert token.encode() not in feed.content, "a sealed token is in the feed"
        analyst = client.get("/events", params={"limit": 1000}, headers=bearer("ana", "analyst"))
        _no_marker(analyst.content, "an analyst's event feed")

        # the lead's history holds none of it either
        history = client.get(f"/leads/{lead_id}/history", headers=AS_TOP)
        assert history.status_code == 200
        _no_marker(history.content, "the lead's history")

    # (c) Server-Sent Events
    with _serving(platform) as url:
        raw = _sse_until(url, head)
    _no_marker(raw, "the SSE stream")
    streamed = _sse_envelopes(raw)
    assert [e["position"] for e in streamed] == list(range(1, head + 1))
    streamed_sets = [e for e in streamed if e["type"] == "LeadSensitiveInfoSet"]
    assert len(streamed_sets) == 3
    for envelope in streamed_sets:
        assert envelope["data"] == {"lead_id": str(lead_id), "subject_id": SUBJECT}

    # (g) Kafka: a one-shot relay of the whole log into this test's topics
    side = CommandSide(
        platform.settings.model_copy(update={"kafka_bootstrap_servers": kafka_broker.bootstrap}),
        platform.funnels,
        platform.rules,
        platform.store,
        platform.clock,
    )
    relay = kafka_relay(side)
    assert relay.catch_up() == head
    topics = sorted({topic_for(t.aggregate_type, topic_prefix) for t in CURRENT.values()})
    received = read_with_kafka_python(kafka_broker.bootstrap, topics, head, timeout=30)
    assert len(received) == head
    kinds = set()
    for message in received:
        _no_marker(message.value, "a Kafka message's value")
        _no_marker(message.key, "a Kafka message's key")
        for name, value in message.headers.items():
            _no_marker(name, "a Kafka header's name")
            _no_marker(value, "a Kafka header")
        for token in tokens:
            assert token.encode() not in message.value, "a sealed token is on Kafka"
        envelope = message.envelope
        kinds.add(envelope["type"])
        if envelope["type"] == "LeadSensitiveInfoSet":
            assert "sealed" not in envelope["data"], envelope
            assert set(envelope["data"]) == {"lead_id", "subject_id"}
    assert {"LeadSensitiveInfoSet", "LeadSensitiveInfoViewed", "LeadCreated"} <= kinds

    # (e) the logs of all of the above
    assert caplog.records, "nothing was logged: the log check would be vacuous"
    _no_marker(caplog.text, "the logs")
    for record in caplog.records:
        _no_marker(repr(record.args), f"the arguments of a log record of {record.name}")

    # (a) the DuckDB file's bytes, and every row of every table in it
    platform.close()
    duckdb_path = Path(platform.settings.duckdb_path)
    duckdb_bytes = _file_bytes(duckdb_path)
    assert str(lead_id).encode() in duckdb_bytes  # the file's bytes do hold the rows' text
    _no_marker(duckdb_bytes, "the DuckDB file")
    text = _duckdb_text(duckdb_path)
    assert str(lead_id) in text  # the scan reads real rows
    _no_marker(text, "a read model's rows")
    for token in tokens:
        assert token not in text, "a sealed token is in a read model"

    # (d) the event store's raw bytes: only the sealed tokens are there
    events = _file_bytes(_sqlite_events_path(platform))
    _no_marker(events, "the SQLite event store")
    assert all(t.encode() in events for t in tokens)  # the scan sees the stored events
    _no_marker(_file_bytes(_sqlite_events_path(platform).parent / KEYS_FILE_NAME), "the keys")


def test_the_published_schemas_carry_no_sealed_content() -> None:
    for name in ("LeadSensitiveInfoSet", "LeadSensitiveInfoViewed", "DataSubjectErased"):
        versions = sorted((PUBLISHED / name).glob("v*.json"))
        assert versions, name
        for path in versions:
            schema = json.loads(path.read_text())
            assert "sealed" not in schema.get("properties", {}), path
            assert "sealed" not in schema.get("required", []), path
            assert schema.get("additionalProperties") is False, path
    current = CURRENT["LeadSensitiveInfoSet"]
    assert "sealed" not in current.fields
    everything = "".join(p.read_text() for p in PUBLISHED.rglob("*.json"))
    assert '"sealed"' not in everything


# --------------------------------------------------------------------- 4. erasure


def test_erasing_the_data_subject_shreds_its_section_and_everything_else_replays(
    client: TestClient, platform: Platform, clock: FakeClock
) -> None:
    lead_id = _new_lead(client)
    bystander = _new_lead(client, company_id="globex-7")
    assert _put(client, lead_id, AS_MANAGER).status_code == 200
    assert _put(client, bystander, AS_MANAGER, fields={"k": "v"}).status_code == 200
    moved = client.post(
        f"/leads/{lead_id}/card", json={"title": "Appraisal, revised"}, headers=AS_MANAGER
    )
    assert moved.status_code == 200, moved.text
    _assert_shown(_get(client, lead_id, AS_MANAGER).json())
    (old_token,) = _sealed_tokens(platform, lead_id)
    live = platform.keys.current_key(SUBJECT)
    assert live is not None
    old_key_id, old_key = live
    assert _open(platform, old_token, lead_id) is not None

    # only administrators erase
    for who in (AS_MANAGER, AS_HEAD, AS_TOP, AS_AUDITOR, bearer("ana", "analyst")):
        refused = client.post(f"/subjects/{SUBJECT}/erasure", headers=who)
        assert refused.status_code == 403, refused.text
    assert platform.keys.current_key(SUBJECT) is not None

    clock.advance(hours=1)
    erased = client.post(f"/subjects/{SUBJECT}/erasure", headers=AS_ADMIN)
    assert erased.status_code == 200, erased.text
    assert erased.json()["subject_id"] == SUBJECT
    assert erased.json()["keys_destroyed"] is True
    assert erased.json()["position"] == platform.store.last_position()
    erased_at = iso(clock.now)

    subject = client.get(f"/subjects/{SUBJECT}", headers=AS_AUDITOR)
    assert subject.status_code == 200, subject.text
    assert subject.json()["has_key"] is False
    assert subject.json()["erased_at"] == erased_at

    # the section reads as erased, for everyone who may read it
    for who in (AS_MANAGER, AS_TOP):
        got = _get(client, lead_id, who)
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["status"] == "erased", body
        assert body["notes"] is None
        assert body["fields"] is None
        assert body["erased_at"] == erased_at
        assert body["subject_id"] == SUBJECT
        _no_marker(got.content, "an erased section's answer")

    # everything else still replays: the lead's history and state, another subject's section
    history = client.get(f"/leads/{lead_id}/history", headers=AS_MANAGER)
    assert history.status_code == 200, history.text
    assert "Appraisal, revised" in history.text
    assert client.get(f"/leads/{lead_id}", headers=AS_MANAGER).status_code == 200
    other = _get(client, bystander, AS_MANAGER).json()
    assert other["status"] == "shown"
    assert other["fields"] == {"k": "v"}

    # no key is left, the old token does not open, no byte of it at rest
    assert platform.keys.current_key(SUBJECT) is None
    assert platform.keys.key(old_key_id) is None
    assert _open(platform, old_token, lead_id) is None
    events_path = _sqlite_events_path(platform)
    events = _file_bytes(events_path)
    _no_marker(events, "the SQLite event store")
    assert old_token.encode() in events  # the old event is still there, only unreadable
    assert old_key not in events
    keys = _file_bytes(events_path.parent / KEYS_FILE_NAME)
    _no_marker(keys, "the key store")
    assert old_key not in keys, "the erased key's bytes are still in keys.sqlite"
    assert old_key_id.encode() not in keys, "the erased key's id is still in keys.sqlite"

    # erasing again is harmless
    again = client.post(f"/subjects/{SUBJECT}/erasure", headers=AS_ADMIN)
    assert again.status_code == 200, again.text
    assert again.json()["keys_destroyed"] is False

    # a new section after the erasure gets a new key and reads; the old one stays shredded
    assert _put(client, lead_id, AS_MANAGER, notes=NOTES_2, fields=FIELDS_2).status_code == 200
    shown = _get(client, lead_id, AS_MANAGER).json()
    _assert_shown(shown, NOTES_2, FIELDS_2)
    renewed = platform.keys.current_key(SUBJECT)
    assert renewed is not None
    assert renewed[0] != old_key_id
    first, second = _sealed_tokens(platform, lead_id)
    assert first == old_token
    assert _open(platform, old_token, lead_id) is None
    assert orjson.loads(_open(platform, second, lead_id) or b"null")["notes"] == NOTES_2


# ------------------------------------------------------------------- 5. validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notes": 5, "fields": {}}, "notes"),
        ({"notes": ["x"], "fields": {}}, "notes"),
        ({"notes": "x" * 20_001, "fields": {}}, "notes"),
        ({"notes": MARKER, "fields": ["a", "b"]}, "fields"),
        ({"notes": MARKER, "fields": "name=value"}, "fields"),
        ({"notes": MARKER, "fields": {"decision maker": 7}}, "fields.decision maker"),
        ({"notes": MARKER, "fields": {"decision maker": "x" * 2_001}}, "fields.decision maker"),
        ({"notes": MARKER, "fields": {}, "sealed": "v1.forged"}, "sealed"),
        ({"notes": MARKER, "fields": {}, "subject_id": "company:other"}, "subject_id"),
    ],
)
def test_bad_bodies_are_refused_naming_the_field_and_append_nothing(
    client: TestClient, platform: Platform, body: dict[str, Any], field: str
) -> None:
    lead_id = _new_lead(client)
    before = platform.store.last_position()
    response = client.put(f"/leads/{lead_id}/sensitive", json=body, headers=AS_MANAGER)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field, response.json()
    assert field in response.json()["detail"] or response.json()["field"] == field
    assert platform.store.last_position() == before


def test_the_limits_themselves_are_accepted(client: TestClient) -> None:
    lead_id = _new_lead(client)
    fields = {f"f{i}": "y" * 2_000 for i in range(50)}
    ok = _put(client, lead_id, AS_MANAGER, notes="x" * 20_000, fields=fields)
    assert ok.status_code == 200, ok.text
    shown = _get(client, lead_id, AS_MANAGER).json()
    assert shown["fields"] == fields
    assert len(shown["notes"]) == 20_000
    too_many = _put(client, lead_id, AS_MANAGER, fields=fields | {"f50": "y"})
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "fields"


def test_an_idempotency_key_reused_with_other_content_is_refused_not_replayed(
    client: TestClient, platform: Platform
) -> None:
    """As on every other command: the same key with a different body is a 422, never a
    replayed 200 that silently drops the new content."""
    lead_id = _new_lead(client)
    headers = {"Idempotency-Key": "sensitive-1"} | AS_MANAGER
    first = _put(client, lead_id, headers, notes=NOTES)
    assert first.status_code == 200, first.text
    again = _put(client, lead_id, headers, notes=NOTES)
    assert again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    before = platform.store.last_position()
    other = _put(client, lead_id, headers, notes=NOTES_2, fields=FIELDS_2)
    assert other.status_code == 422, (other.status_code, other.headers, other.text)
    assert other.json()["code"] == "idempotency_key_reused"
    assert platform.store.last_position() == before


# ------------------------------------------------------------------- 6. PostgreSQL


def _pg_schema(url: str) -> str:
    return parse_qs(urlparse(url).query)["schema"][0]


@pytest.mark.postgres
def test_set_read_and_erase_on_postgres(
    make_platform: PlatformFactory, pg_schema_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    platform = make_platform(pg_schema_url)
    schema = _pg_schema(pg_schema_url)
    assert platform.keys.backend == "postgresql"
    with _app(platform) as client:
        lead_id = _new_lead(client)
        assert _put(client, lead_id, AS_MANAGER).status_code == 200
        _assert_shown(_get(client, lead_id, AS_MANAGER).json())
        (token,) = _sealed_tokens(platform, lead_id)

        def scan() -> tuple[str, int]:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                states = conn.execute(
                    sql.SQL("SELECT state FROM {}.stored_events").format(sql.Identifier(schema))
                ).fetchall()
                keys = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}.{} WHERE subject_id = %s").format(
                        sql.Identifier(schema), sql.Identifier(KEYS_TABLE)
                    ),
                    (SUBJECT,),
                ).fetchone()
            assert keys is not None
            return "\n".join(bytes(s[0]).decode() for s in states), int(keys[0])

        stored, key_rows = scan()
        _no_marker(stored, "the PostgreSQL event store")
        assert token in stored
        assert key_rows == 1

        erased = client.post(f"/subjects/{SUBJECT}/erasure", headers=AS_ADMIN)
        assert erased.status_code == 200, erased.text
        assert erased.json()["keys_destroyed"] is True
        got = _get(client, lead_id, AS_MANAGER).json()
        assert got["status"] == "erased"
        assert got["notes"] is None
        assert got["fields"] is None
        assert got["erased_at"] is not None
        assert client.get(f"/leads/{lead_id}/history", headers=AS_MANAGER).status_code == 200
        assert platform.keys.current_key(SUBJECT) is None
        assert _open(platform, token, lead_id) is None
        stored, key_rows = scan()
        assert key_rows == 0
        _no_marker(stored, "the PostgreSQL event store")
        assert client.post(f"/subjects/{SUBJECT}/erasure", headers=AS_ADMIN).json() == {
            "subject_id": SUBJECT,
            "keys_destroyed": False,
            "position": platform.store.last_position(),
        }

        assert _put(client, lead_id, AS_MANAGER, notes=NOTES_2, fields=FIELDS_2).status_code == 200
        _assert_shown(_get(client, lead_id, AS_MANAGER).json(), NOTES_2, FIELDS_2)
        assert _open(platform, token, lead_id) is None
    _no_marker(caplog.text, "the logs")


@pytest.mark.parametrize(
    "subject", ["a%00b", "company:%00x", "lead:not-a-uuid", "person:7", "x" * 301, "%20"]
)
def test_a_subject_id_that_is_no_data_subject_is_refused(client: TestClient, subject: str) -> None:
    before = client.app.state.platform.store.last_position()  # type: ignore[attr-defined]
    for response in (
        client.get(f"/subjects/{subject}", headers=AS_ADMIN),
        client.post(f"/subjects/{subject}/erasure", headers=AS_ADMIN),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "subject_id"
    assert client.app.state.platform.store.last_position() == before  # type: ignore[attr-defined]

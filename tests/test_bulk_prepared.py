"""Events prepared for the bulk COPY where they are decided (issue 18 §2, the pooled
import's workers): the same rows back, the same COPY bytes and chain hashes as the
chain's own ``link``, the same JSON as the codec's ``dumps``; and a pooled import into
SQLite (its chunks prepared) writes exactly the serial import's events."""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from aggregates.errors import InvalidValue
from aggregates.values import CENT, _two_places
from event_store import open_event_store, verify
from event_store.bulk import StoredRow, copy_rows, existing_stream_ids, existing_streams, prepare
from event_store.chain import link
from event_store.codec import dumps, dumps_fields
from leadledger.imports.base import _DMY, parse_instant
from leadledger.wiring import event_codec
from tests.conftest import FakeClock
from tests.test_import_pool import events, rows, small_batches, summary
from tests.test_imports import _Side, run, write_csv

__all__ = ["small_batches"]  # the fixture, used by name

stored_rows = st.lists(
    st.tuples(
        st.uuids(),
        st.integers(min_value=1, max_value=2**62),
        st.text(min_size=1, max_size=40),
        st.binary(max_size=300),
    ),
    max_size=20,
)


@given(stored_rows, st.binary(min_size=32, max_size=32), st.integers(1, 2**40))
def test_prepared_rows_copy_and_chain_as_the_rows_themselves(
    rows_: list[StoredRow], prev: bytes, first: int
) -> None:
    ready = prepare(rows_)
    assert ready.rows() == rows_
    events_data, chain_data, last = copy_rows(prev, first, ready, True)
    assert copy_rows(prev, first, rows_, True) == (events_data, chain_data, last)
    expected_events: list[bytes] = []
    expected_chain: list[bytes] = []
    head = prev
    for position, (stream, version, topic_text, state) in enumerate(rows_, start=first):
        topic = topic_text.encode()
        expected_events.append(
            struct.pack(">hi16sIqi", 5, 16, stream.bytes, 8, version, len(topic))
            + topic
            + struct.pack(">i", len(state))
            + state
            + struct.pack(">iq", 8, position)
        )
        head = link(head, position, stream.hex.encode(), version, topic, state)
        expected_chain.append(struct.pack(">hIqi", 2, 8, position, 32) + head)
    assert events_data == b"".join(expected_events)
    assert chain_data == b"".join(expected_chain)
    assert last == head


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
    | st.datetimes(timezones=st.just(UTC)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.dictionaries(st.integers(-(2**63), 2**63 - 1), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_event_fields_dump_as_dumps_does(fields: dict[str, Any]) -> None:
    assert dumps_fields(fields) == dumps(fields)


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**14), max_value=10**14))
def test_two_places_answers_as_before(number: Decimal) -> None:
    """The former definition (the rounding made twice) and the current one agree."""

    def former(value: Decimal) -> Decimal | str:
        try:
            if value != value.quantize(CENT):
                return "refused"
            return value.quantize(CENT)
        except InvalidOperation:
            return "invalid"

    try:
        current: Decimal | str = _two_places("amount", number)
    except InvalidValue:
        current = "refused"
    except InvalidOperation:
        current = "invalid"
    assert current == former(number)


def test_existing_stream_ids_are_existing_streams_as_bytes(
    store_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    store = open_event_store(store_url, event_codec())
    try:
        path = write_csv(tmp_path / "some.csv", rows(20))
        assert run(_Side(store), clock, path, workers=1).status == "imported"
        ids = [UUID(int=n) for n in range(5)]
        ids += [UUID(str(n.originator_id)) for n in store.read(0, 100)]
        found = existing_streams(store, ids)
        assert found
        assert len(found) < len(ids)
        assert existing_stream_ids(store, [i.bytes for i in ids]) == {i.bytes for i in found}
    finally:
        store.close()


def test_pooled_import_into_sqlite_writes_the_serial_events(
    clock: FakeClock, tmp_path: Path, small_batches: None
) -> None:
    serial = open_event_store(f"sqlite:///{tmp_path}/serial.sqlite", event_codec())
    pooled = open_event_store(f"sqlite:///{tmp_path}/pooled.sqlite", event_codec())
    try:
        path = write_csv(tmp_path / "whole.csv", rows())
        for mode in ("all", "rows"):
            one = run(_Side(serial), clock, path, workers=1, mode=mode)
            two = run(_Side(pooled), clock, path, workers=2, mode=mode)
            assert summary(two) == summary(one)
        assert events(pooled) == events(serial)
        assert verify(pooled).ok
    finally:
        serial.close()
        pooled.close()


def _former_parse_instant(value: Any) -> datetime | None:
    """``parse_instant`` before its fast path for text (the reference)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    else:
        text = str(value).strip()
        if not text:
            return None
        match = _DMY.match(text) if "." in text[1:3] else None
        try:
            if match:
                d, m, y, hh, mm, ss = match.groups()
                moment = datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("refused") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


instants = (
    (
        st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()).map(
            lambda d: st.sampled_from(
                [
                    d.isoformat(),
                    d.isoformat(" "),
                    d.strftime("%Y-%m-%d %H:%M"),
                    d.strftime("%d.%m.%Y"),
                ]
            )
        )
    ).flatmap(lambda s: s)
    | st.text(alphabet="0123456789-:.TZ +", max_size=25)
    | st.text(max_size=8)
)


@given(instants.map(lambda t: f" {t} ") | instants)
def test_parse_instant_answers_as_its_former_definition(text: str) -> None:
    try:
        expected: Any = _former_parse_instant(text)
    except ValueError:
        expected = "refused"
    try:
        got: Any = parse_instant(text)
    except ValueError:
        got = "refused"
    assert got == expected
    if isinstance(got, datetime):
        assert got.utcoffset() == expected.utcoffset()

"""Rows decided in a pool of worker processes (issue 18 §2): the same events, in the same
order, at the same positions as the serial path, the same report (refusals, already
imported), the mode-all pipeline writing nothing when a row is refused (and burning no
position), and the progress callbacks hearing every row and event."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from event_store import EventStore, open_event_store, verify
from leadledger.imports import runner
from leadledger.imports.base import IMPORT_NAMESPACE, import_uuid, uuid_of
from leadledger.imports.runner import ImportReport
from leadledger.wiring import event_codec
from tests.conftest import FakeClock
from tests.test_imports import _Side, lead_row, run, write_csv

ROWS = 300


def rows(count: int = ROWS) -> list[dict[str, str]]:
    out = []
    for n in range(1, count + 1):
        overrides: dict[str, str] = {"company_id": f"77{n % 23:04d}"}
        if n % 7 == 0:
            overrides = {"company_id": "", "company_name": f"Person {n}"}
        elif n % 5 == 0:
            overrides = {"stage": "proposal_sent", "stage_entered_at": "2025-12-29 10:00"}
        if n % 11 == 0:
            overrides.update(status="lost", reason="price", closed_at="2025-12-30 10:00")
        elif n % 13 == 0:
            overrides.update(status="paused", reason="vacation")
        elif n % 17 == 0:
            overrides.update(status="non_quality", reason="not our case")
        elif n % 4 == 0:
            overrides.update(quality="yes")
        out.append(lead_row(n, **overrides))
    return out


def events(store: EventStore) -> list[tuple[Any, ...]]:
    return [
        (n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
        for n in store.read(0, 10_000)
    ]


def summary(report: ImportReport) -> tuple[Any, ...]:
    return (
        report.status,
        report.rows,
        report.accepted,
        report.already_imported,
        report.refused,
        report.imported,
        report.events,
        report.first_position,
        report.last_position,
        [e.as_dict() for e in report.errors],
    )


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BATCH", 40)


def test_pooled_rows_give_exactly_the_serial_events_and_reports(
    pg_schema_url: str, clock: FakeClock, tmp_path: Path, small_batches: None
) -> None:
    serial = open_event_store(f"sqlite:///{tmp_path}/serial.sqlite", event_codec())
    pooled = open_event_store(pg_schema_url, event_codec())
    try:
        half = write_csv(tmp_path / "half.csv", rows(ROWS // 2))
        whole = write_csv(tmp_path / "whole.csv", rows())
        for path in (half, whole):  # the second finds the first half imported already
            heard: dict[str, int] = {"checked": 0, "writing": 0, "written": 0}

            def hear(name: str, heard: dict[str, int] = heard) -> Any:
                return lambda n: heard.__setitem__(name, heard[name] + n)

            one = run(_Side(serial), clock, path, workers=1)
            two = run(
                _Side(pooled),
                clock,
                path,
                workers=2,
                checked=hear("checked"),
                writing=hear("writing"),
                written=hear("written"),
            )
            assert one.status == "imported"
            assert summary(two) == summary(one)
            assert heard == {"checked": one.rows, "writing": one.events, "written": one.events}
        assert events(pooled) == events(serial)
        assert len(events(pooled)) > ROWS
        chain = verify(pooled)
        assert chain.ok, chain.message()
    finally:
        serial.close()
        pooled.close()


def test_pooled_refusals_are_the_serial_ones_and_mode_all_writes_nothing(
    pg_schema_url: str, clock: FakeClock, tmp_path: Path, small_batches: None
) -> None:
    good = rows()
    bad = list(good)
    bad[100] = lead_row(101, stage="nowhere")
    bad[200] = lead_row(201, created_at="31.02.2025")
    bad[250] = good[3]  # the same record as row 5
    path = write_csv(tmp_path / "bad.csv", bad)
    serial = open_event_store(f"sqlite:///{tmp_path}/serial.sqlite", event_codec())
    pooled = open_event_store(pg_schema_url, event_codec())
    try:
        for mode, dry_run in (("all", True), ("all", False), ("rows", False)):
            one = run(_Side(serial), clock, path, workers=1, mode=mode, dry_run=dry_run)
            two = run(_Side(pooled), clock, path, workers=2, mode=mode, dry_run=dry_run)
            assert summary(two) == summary(one)
            assert [e.row for e in two.errors] == [102, 202, 252]
            if mode == "all" and not dry_run:
                assert two.status == "rejected"
                assert pooled.last_position() == 0
        # mode rows wrote the good rows at positions from 1: the rejected pipeline
        # consumed no position
        assert events(pooled) == events(serial)
        assert events(pooled)[0][0] == 1
        assert verify(pooled).ok
    finally:
        serial.close()
        pooled.close()


@given(st.text())
def test_import_ids_are_the_uuid5_of_the_import_namespace(name: str) -> None:
    try:
        expected = uuid5(IMPORT_NAMESPACE, name)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            import_uuid(name)
        return
    made = import_uuid(name)
    assert made == expected
    assert (made.version, made.variant, str(made), hash(made)) == (
        expected.version,
        expected.variant,
        str(expected),
        hash(expected),
    )


@given(st.binary(min_size=16, max_size=16))
def test_a_record_id_sent_as_its_bytes_is_the_same_uuid_again(raw: bytes) -> None:
    expected = UUID(bytes=raw)
    made = uuid_of(raw)
    assert made == expected
    assert (str(made), hash(made), made.bytes, made.is_safe) == (
        str(expected),
        hash(expected),
        raw,
        expected.is_safe,
    )

"""Importing an existing base (issue 18 §2): every row checked by the deciders, the dry
run's report (row, column, reason), all-or-nothing and rows modes, idempotency, the cause
of every imported event in the record's history, CSV and XLSX, the CLI, the reports
counting imported leads as leads created by commands at the same instants, deals linked
to their leads, and the bulk path on PostgreSQL (gap-free positions, the chain intact)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import openpyxl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregates import company, deal, lead, limits
from commands.context import CommandContext
from commands.imports import import_file
from event_store import EventStore, open_event_store, verify
from event_store.bulk import bulk_append, encode
from leadledger.cli import main
from leadledger.imports.base import record_id
from leadledger.imports.runner import ImportReport
from leadledger.wiring import Platform, build_command_side, event_codec
from read_api.app import create_app
from tests.conftest import ACTOR, FakeClock, PlatformFactory

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "import"
HEADER = [
    "external_id",
    "title",
    "company_name",
    "company_id",
    "source",
    "manager",
    "funnel",
    "stage",
    "status",
    "created_at",
    "stage_entered_at",
    "closed_at",
    "amount",
    "reason",
    "quality",
]


def lead_row(n: int, **overrides: str) -> dict[str, str]:
    row = {
        "external_id": f"L-{n}",
        "title": f"Lead {n}",
        "company_name": f"Company {n % 3}",
        "company_id": f"77000{n % 3}",
        "source": "website",
        "manager": "boris",
        "funnel": "out_of_court",
        "stage": "new",
        "status": "open",
        "created_at": f"2025-{1 + n % 12:02d}-{1 + n % 27:02d} 10:00",
        "stage_entered_at": "",
        "closed_at": "",
        "amount": f"{1000 + n}",
        "reason": "",
        "quality": "",
    }
    row.update(overrides)
    return row


def write_csv(
    path: Path, rows: list[dict[str, str]], delimiter: str = ",", bom: bool = False
) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADER, delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")
    return path


def run(
    side: Any,
    clock: FakeClock,
    path: Path,
    kind: str = "leads",
    **options: Any,
) -> ImportReport:
    ctx = CommandContext(actor="adam.admin", at=clock(), command_id=uuid4(), actor_role="admin")
    report, _ = import_file(side.store, side.funnels, side.rules, ctx, kind, path, **options)
    return report


def imported(store: EventStore, external_id: str) -> lead.LeadImported:
    event = store.load(record_id("leads", f"id:{external_id}"))[0].event
    assert isinstance(event, lead.LeadImported)
    return event


@pytest.fixture
def side(make_platform: PlatformFactory) -> Platform:
    return make_platform(process_managers=False)


@pytest.fixture
def api(side: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(side, close_on_exit=False), headers=ACTOR) as client:
        yield client


BAD_ROWS = [
    lead_row(1),
    lead_row(2, created_at="31.02.2025"),  # row 3: no such day
    lead_row(3, stage="nowhere"),  # row 4: not a stage of the funnel
    lead_row(4, status="lost", closed_at="2025-06-01"),  # row 5: lost needs a reason
    lead_row(5, title=""),  # row 6: required
    lead_row(6),
    lead_row(1),  # row 8: the same record as row 2
    lead_row(7, amount="12,345.678"),  # row 9: more than 2 decimals
]


def test_a_dry_run_reports_every_bad_row_with_its_row_column_and_reason(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", BAD_ROWS)
    report = run(side, clock, path, dry_run=True)
    assert report.status == "dry_run"
    assert (report.rows, report.accepted, report.refused) == (8, 2, 6)
    got = [(e.row, e.column, e.code) for e in report.errors]
    assert got == [
        (3, "created_at", "invalid_value"),
        (4, "stage", "invalid_value"),
        (5, "reason", "invalid_value"),
        (6, "title", "invalid_value"),
        (8, None, "duplicate_row"),
        (9, "amount", "invalid_value"),
    ]
    reasons = {e.row: e.reason for e in report.errors}
    assert "date" in reasons[3]
    assert "nowhere" in reasons[4]
    assert reasons[5] == "'reason' is required"
    assert reasons[8] == "the same record as row 2"
    assert side.store.last_position() == 0


def test_mode_all_writes_nothing_when_one_row_is_bad(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    rows = [lead_row(n) for n in range(1, 30)]
    rows[17]["manager"] = ""
    report = run(side, clock, write_csv(tmp_path / "leads.csv", rows))
    assert report.status == "rejected"
    assert [(e.row, e.column) for e in report.errors] == [(19, "manager")]
    assert report.imported == 0
    assert side.store.last_position() == 0


def test_mode_rows_imports_the_good_rows_and_lists_the_rejects_then_a_rerun_adds_nothing(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", BAD_ROWS)
    first = run(side, clock, path, mode="rows")
    assert (first.status, first.imported, first.refused) == ("imported", 2, 6)
    # two leads of companies new to the store: each registers its company
    assert first.events == side.store.last_position() == 4
    again = run(side, clock, path, mode="rows")
    assert (again.status, again.imported, again.already_imported) == ("imported", 0, 2) or (
        again.status,
        again.imported,
        again.already_imported,
    ) == ("already_imported", 0, 2)
    assert side.store.last_position() == 4
    # the rows fixed in a corrected file come in; the others are known already
    fixed = [r for i, r in enumerate(BAD_ROWS) if i != 6]
    fixed[1] = lead_row(2, created_at="28.02.2025")
    fixed[4] = lead_row(5, title="Lead five")
    third = run(side, clock, write_csv(tmp_path / "fixed.csv", fixed), mode="rows")
    assert (third.imported, third.already_imported, third.refused) == (2, 2, 3)


def test_importing_the_same_file_twice_adds_nothing(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", [lead_row(n) for n in range(1, 11)])
    first = run(side, clock, path)
    assert (first.status, first.imported) == ("imported", 10)
    position = side.store.last_position()
    second = run(side, clock, path)
    assert (second.status, second.imported, second.already_imported) == (
        "already_imported",
        0,
        10,
    )
    assert side.store.last_position() == position


def test_each_imported_record_names_its_file_checksum_and_row_in_its_history(
    side: Platform, api: TestClient, clock: FakeClock, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", [lead_row(1), lead_row(2)])
    report = run(side, clock, path)
    lead_id = record_id("leads", "id:L-2")
    history = api.get(f"/leads/{lead_id}/history")
    assert history.status_code == 200, history.text
    (entry,) = history.json()["events"]
    assert entry["type"] == "LeadImported"
    assert entry["caused_by"] == f"import leads.csv sha256:{report.checksum} row 3"
    assert entry["command"] == "import-leads"
    assert entry["actor"] == "adam.admin"
    # and the lead takes commands like any other
    moved = api.post(f"/leads/{lead_id}/stage", json={"stage": "assessment"})
    assert moved.status_code == 200, moved.text


def test_csv_with_a_bom_and_semicolons_and_xlsx_read_the_same(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    rows = [lead_row(n) for n in range(1, 6)]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        values: list[Any] = [row[h] for h in HEADER]
        values[HEADER.index("created_at")] = datetime.fromisoformat(row["created_at"])
        values[HEADER.index("amount")] = int(row["amount"])
        sheet.append(values)
    xlsx = tmp_path / "leads.xlsx"
    workbook.save(xlsx)
    first = run(side, clock, xlsx)
    assert (first.format, first.status, first.imported) == ("xlsx", "imported", 5)
    csv_path = write_csv(tmp_path / "leads.csv", rows, delimiter=";", bom=True)
    second = run(side, clock, csv_path)
    assert (second.format, second.status, second.already_imported) == (
        "csv",
        "already_imported",
        5,
    )


def test_repeat_follows_the_creation_order_and_the_companies_known_before(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    rows = [
        lead_row(1, company_id="A", created_at="2025-03-01"),
        lead_row(2, company_id="A", created_at="2025-01-01"),  # A's first lead
        lead_row(3, company_id="B", created_at="2025-02-01"),
        lead_row(4, company_id="", created_at="2025-02-01"),
    ]
    run(side, clock, write_csv(tmp_path / "a.csv", rows))
    repeat = {f"L-{n}": imported(side.store, f"L-{n}").repeat for n in range(1, 5)}
    assert repeat == {"L-1": True, "L-2": False, "L-3": False, "L-4": False}
    registered = side.store.load(company.company_stream_id("A"))[0].event
    assert isinstance(registered, company.CompanyRegistered)
    assert registered.first_lead_id == record_id("leads", "id:L-2")
    # a later file: A and B are known, so their leads are repeat
    later = [lead_row(5, company_id="B"), lead_row(6, company_id="C")]
    run(side, clock, write_csv(tmp_path / "b.csv", later))
    assert imported(side.store, "L-5").repeat is True
    assert imported(side.store, "L-6").repeat is False


def test_in_rows_mode_a_refused_first_lead_leaves_the_next_one_new(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    rows = [
        lead_row(1, company_id="A", created_at="2025-01-01", stage="nowhere"),
        lead_row(2, company_id="A", created_at="2025-02-01"),
        lead_row(3, company_id="A", created_at="2025-03-01"),
    ]
    report = run(side, clock, write_csv(tmp_path / "a.csv", rows), mode="rows")
    assert (report.imported, report.refused) == (2, 1)
    assert imported(side.store, "L-2").repeat is False
    assert imported(side.store, "L-3").repeat is True


def test_the_rules_of_the_commands_hold_for_every_row(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    rows = [
        # quality in a funnel that asks for an assessment first
        lead_row(1, funnel="court", stage="request_received", quality="yes"),
        # non-quality is a status, and it needs a reason
        lead_row(2, status="non_quality"),
        # closed before it was created
        lead_row(3, status="won", created_at="2025-05-01", closed_at="2025-04-01"),
        lead_row(4, status="lost", reason="price", closed_at="2025-12-31"),
    ]
    report = run(side, clock, write_csv(tmp_path / "r.csv", rows), dry_run=True)
    got = {e.row: (e.field, e.code) for e in report.errors}
    assert got == {
        2: (None, "assessment_required"),
        3: ("reason", "invalid_value"),
        4: ("closed_at", "invalid_value"),
    }


def test_the_shipped_examples_import(side: Platform, clock: FakeClock) -> None:
    mapping = json.loads((EXAMPLES / "leads-mapping.json").read_text(encoding="utf-8"))
    leads = run(side, clock, EXAMPLES / "leads.csv", mapping=mapping["columns"])
    assert (leads.status, leads.imported, leads.refused) == ("imported", 6, 0)
    deals = run(side, clock, EXAMPLES / "deals.csv", kind="deals")
    # five rows: D-503's second invoice is a continuation row
    assert (deals.status, deals.imported, deals.refused) == ("imported", 5, 0), deals.errors
    lead_id = record_id("leads", "id:L-1002")
    lead_events = [r.event.type for r in side.store.load(lead_id)]
    assert lead_events == ["LeadImported", "LeadConvertedToDeal"]
    # the won deal with its money, its invoice booked on the simplified-tax ledger; an upsell
    won = deal.fold([r.event for r in side.store.load(record_id("deals", "id:D-503"))])
    assert won is not None
    assert (won.status.value, won.amount, [i.number for i in won.invoices]) == (
        "won",
        Decimal("150000"),
        ["118/24", "131/24"],
    )
    ledger = side.store.load(limits.revenue_stream_id("simplified", 2024))
    assert [r.event.type for r in ledger] == ["RevenueBooked", "RevenueBooked"]
    assert won.project_id is not None  # the won deal's project came with it
    upsell = deal.fold([r.event for r in side.store.load(record_id("deals", "id:D-504"))])
    assert upsell is not None
    assert upsell.previous_deal_id == won.deal_id
    assert verify(side.store).ok


def test_a_deal_links_to_its_lead_once_and_a_won_deal_needs_its_invoice(
    side: Platform, clock: FakeClock, tmp_path: Path
) -> None:
    run(side, clock, write_csv(tmp_path / "l.csv", [lead_row(1), lead_row(2)]))
    deals = tmp_path / "d.csv"
    deals.write_text(
        "external_id,title,company_name,source,manager,funnel,status,created_at,lead,reason\n"
        "D1,Roof,Company 1,website,boris,turnkey,open,2025-03-01,L-1,\n"
        "D2,Fence,Company 1,website,boris,turnkey,open,2025-03-02,L-1,\n"
        "D3,Gate,Company 2,website,boris,turnkey,won,2025-03-02,L-2,\n"
        "D4,Wall,Company 2,website,boris,turnkey,open,2025-03-02,L-404,\n",
        encoding="utf-8",
    )
    report = run(side, clock, deals, kind="deals", dry_run=True)
    got = {e.row: (e.field, e.code) for e in report.errors}
    assert got == {
        3: (None, "lead_already_converted"),
        4: ("invoiced", "invalid_value"),  # a won deal comes with its money
        5: ("lead", "lead_not_found"),
    }


# --- the reports count imported leads as leads created at those instants ---------------

HISTORY = [
    # (external id, company, created, stage, stage entered, status, closed, reason, quality)
    ("H1", "A", "2025-01-10", "new", None, "open", None, None, None),
    ("H2", "A", "2025-02-03", "proposal_sent", "2025-02-20", "open", None, None, True),
    ("H3", "B", "2025-02-15", "assessment", "2025-02-16", "lost", "2025-03-01", "price", None),
    ("H4", "", "2025-03-05", "new", None, "non_quality", "2025-03-06", "spam", None),
    ("H5", "B", "2025-03-10", "contract", "2025-04-01", "won", "2025-04-10", None, True),
    (
        "H6",
        "C",
        "2025-04-02",
        "proposal_preparation",
        "2025-04-03",
        "paused",
        None,
        "vacation",
        None,
    ),
]


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _through_commands(api: TestClient, clock: FakeClock) -> int:
    position = 0
    for ext, comp, created, stage, entered, status, closed, reason, quality in HISTORY:
        clock.now = _at(created)
        body = {
            "funnel": "out_of_court",
            "title": ext,
            "company_name": f"Company {comp}",
            "source": "website",
            "manager": "boris",
            "amount": "100",
        }
        if comp:
            body["company_id"] = comp
        lead = api.post("/leads", json=body)
        assert lead.status_code == 201, lead.text
        lead_id = lead.json()["lead_id"]
        position = lead.json()["position"]
        steps: list[tuple[str, dict[str, Any]]] = []
        if stage != "new":
            steps.append((entered or created, {"path": "stage", "json": {"stage": stage}}))
        if quality:
            steps.append((entered or created, {"path": "qualification", "json": {"quality": True}}))
        if status == "non_quality":
            steps.append(
                (
                    closed or created,
                    {"path": "qualification", "json": {"quality": False, "reason": reason}},
                )
            )
        elif status in ("won", "lost"):
            steps.append(
                (
                    closed or created,
                    {"path": "close", "json": {"outcome": status, "reason": reason}},
                )
            )
        elif status == "paused":
            steps.append((entered or created, {"path": "pause", "json": {"reason": reason}}))
        for day, step in steps:
            clock.now = _at(day)
            done = api.post(f"/leads/{lead_id}/{step['path']}", json=step["json"])
            assert done.status_code == 200, done.text
            position = done.json()["position"]
    return position


def _as_file(path: Path) -> Path:
    rows = []
    for ext, comp, created, stage, entered, status, closed, reason, quality in HISTORY:
        rows.append(
            lead_row(
                0,
                external_id=ext,
                title=ext,
                company_name=f"Company {comp}",
                company_id=comp,
                stage=stage,
                stage_entered_at=entered or "",
                status=status,
                created_at=created,
                closed_at=closed or "",
                reason=reason or "",
                quality="yes" if quality else "",
                amount="100",
            )
        )
    return write_csv(path, rows)


def _reports(api: TestClient, position: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, params in (
        ("funnel", {"funnel": "out_of_court"}),
        ("funnel-q1", {"funnel": "out_of_court", "from": "2025-01-01", "to": "2025-03-31"}),
        ("leads-period", {"split": "month"}),
        ("leads-period-source", {"split": "source", "from": "2025-02-01", "to": "2025-03-31"}),
    ):
        path = "/reports/funnel" if name.startswith("funnel") else "/reports/leads-period"
        answer = api.get(path, params={"min_position": position, **params})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # the leads in work, by title (their ids differ)
        items = body.pop("in_work_items", None)
        if items is not None:
            body["in_work"] = sorted(
                (i["title"], i["status"], i["stage"], i["created_at"]) for i in items
            )
        out[name] = body
    return out


def test_the_funnel_and_the_period_reports_count_imported_leads_as_created_then(
    make_platform: PlatformFactory, clock: FakeClock, tmp_path: Path
) -> None:
    by_commands = make_platform(process_managers=False)
    by_import = make_platform(process_managers=False)
    with (
        TestClient(create_app(by_commands, close_on_exit=False), headers=ACTOR) as a,
        TestClient(create_app(by_import, close_on_exit=False), headers=ACTOR) as b,
    ):
        position_a = _through_commands(a, clock)
        clock.now = datetime(2026, 1, 5, tzinfo=UTC)
        report = run(by_import, clock, _as_file(tmp_path / "history.csv"))
        assert report.status == "imported", report.errors
        assert report.last_position is not None
        expected = _reports(a, position_a)
        got = _reports(b, report.last_position)
        assert got == expected
        assert expected["funnel"]["totals"]["count"] == 6
        # and the leads' read model agrees field by field (ids and who aside)
        columns = (
            "title, funnel, stage, furthest_step, status, repeat, company_id, amount, quality,"
            " qualification_reason, close_reason, pause_reason, paused_since, closed_at,"
            " created_at, stage_entered_at, qualified_at"
        )
        query = f"SELECT {columns} FROM leads ORDER BY title"
        assert by_import.db.cursor().execute(query).fetchall() == (
            by_commands.db.cursor().execute(query).fetchall()
        )


# --- the CLI ----------------------------------------------------------------------------


def test_the_cli_checks_imports_and_writes_the_refused_rows_beside_their_reasons(
    make_platform: PlatformFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path}/cli.sqlite"
    monkeypatch.setenv("LEADLEDGER_EVENT_STORE_URL", url)
    monkeypatch.setenv("LEADLEDGER_DUCKDB_PATH", str(tmp_path / "cli.duckdb"))
    path = write_csv(tmp_path / "leads.csv", BAD_ROWS)
    errors = tmp_path / "errors.xlsx"
    assert main(["import", "leads", str(path), "--dry-run", "--errors", str(errors)]) == 1
    out = capsys.readouterr().out
    assert "row 5: column 'reason': 'reason' is required" in out
    assert "dry run: nothing written" in out
    sheet = openpyxl.load_workbook(errors).active
    assert sheet is not None
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == ["Row", *HEADER, "Errors", "Codes"]
    assert [r[0] for r in table[1:]] == [3, 4, 5, 6, 8, 9]
    assert table[3][-2] == "reason: 'reason' is required"
    assert main(["import", "leads", str(path)]) == 1  # mode all: nothing written
    assert "nothing imported" in capsys.readouterr().out
    assert main(["import", "leads", str(path), "--mode", "rows", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["status"], report["imported"], report["refused"]) == ("imported", 2, 6)
    mapped = tmp_path / "renamed.csv"
    mapped.write_text(
        path.read_text(encoding="utf-8").replace("title", "Тема сделки", 1), encoding="utf-8"
    )
    assert main(["import", "leads", str(mapped), "--dry-run"]) == 2
    assert "required field(s) title" in capsys.readouterr().err
    assert (
        main(["import", "leads", str(mapped), "--map", "Тема сделки=title", "--mode", "rows"]) == 0
    )
    assert "2 already imported" in capsys.readouterr().out
    side = build_command_side()
    try:
        assert side.store.last_position() == 4
    finally:
        side.close()


# --- a property -------------------------------------------------------------------------

ROW_KINDS = st.lists(
    st.sampled_from(["good", "bad_date", "bad_stage", "no_title"]), min_size=1, max_size=12
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kinds=ROW_KINDS, mode=st.sampled_from(["all", "rows"]))
def test_imported_count_is_the_valid_rows_or_all_or_nothing_and_a_rerun_adds_nothing(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str], mode: str
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    store = open_event_store(f"sqlite:///{folder}/e.sqlite", event_codec())
    side = _Side(store)
    clock = FakeClock()
    try:
        rows = []
        for n, kind in enumerate(kinds, start=1):
            overrides = {
                "bad_date": {"created_at": "2025-13-01"},
                "bad_stage": {"stage": "x"},
                "no_title": {"title": " "},
            }
            rows.append(lead_row(n, **overrides.get(kind, {})))
        path = write_csv(folder / "p.csv", rows)
        valid = kinds.count("good")
        first = run(side, clock, path, mode=mode)
        if mode == "rows" or valid == len(kinds):
            assert first.imported == valid
        else:
            assert first.imported == 0
            assert store.last_position() == 0
        position = store.last_position()
        second = run(side, clock, path, mode=mode)
        assert second.imported == 0
        assert store.last_position() == position
        assert verify(store).ok
    finally:
        store.close()


class _Side:
    def __init__(self, store: EventStore) -> None:
        from leadledger.settings import Settings
        from leadledger.wiring import load_funnels, load_rules

        settings_ = Settings()
        self.store = store
        self.funnels = load_funnels(settings_.funnels_file)
        self.rules = load_rules(settings_.funnels_file, settings_.rules_file)


# --- the bulk path on PostgreSQL --------------------------------------------------------


def test_the_bulk_append_on_postgres_keeps_positions_gap_free_and_the_chain_intact(
    pg_schema_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    store = open_event_store(pg_schema_url, event_codec())
    side = _Side(store)
    try:
        from tests.test_audit_chain import _append

        _append(store, 3)  # events appended the usual way before
        report = run(
            side, clock, write_csv(tmp_path / "l.csv", [lead_row(n) for n in range(1, 40)])
        )
        assert (report.first_position, report.last_position) == (4, 3 + report.events)
        _append(store, 2)  # and after: they chain on
        # a refused bulk append (a stream taken) writes nothing and burns no number
        taken = record_id("leads", "id:L-1")
        event = store.load(taken)[0].event
        with pytest.raises(Exception, match="exists already"):
            bulk_append(store, [[encode(store, uuid4(), 1, event), encode(store, taken, 1, event)]])
        _append(store, 1)
        positions = [n.id for n in store.read(0, 1000)]
        assert positions == list(range(1, len(positions) + 1))
        assert len(positions) == 3 + report.events + 3
        chain = verify(store)
        assert chain.ok, chain.message()
        assert chain.events == len(positions)
    finally:
        store.close()


def test_ids_are_derived_from_the_natural_key() -> None:
    assert record_id("leads", "id:L-1") == record_id("leads", "id:L-1")
    assert record_id("leads", "id:L-1") != record_id("deals", "id:L-1")
    assert isinstance(record_id("leads", "row:x"), UUID)

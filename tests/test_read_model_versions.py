"""Read models built by another version or funnel configuration are rebuilt, not misread."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from uuid import UUID

import duckdb
from fastapi.testclient import TestClient
from pydantic import SecretStr

from leadledger.settings import DEFAULT_FUNNELS_FILE, Settings
from leadledger.wiring import build, load_funnels
from read_api.app import create_app
from tests.conftest import ACTOR, TEST_AUTH_SECRET, FakeClock, new_lead_body
from tests.factories import LeadDriver


def _leads(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "SELECT lead_id, funnel, stage, stage_step, furthest_step FROM leads ORDER BY lead_id"
        ).fetchall()


def test_reordered_stages_rebuild_the_read_models(tmp_path: Path, clock: FakeClock) -> None:
    events = f"sqlite:///{tmp_path}/events.sqlite"
    duck = tmp_path / "read_models.duckdb"
    platform = build(
        Settings(event_store_url=events, duckdb_path=duck, auth_secret=SecretStr(TEST_AUTH_SECRET)),
        clock=clock,
    )
    driver = LeadDriver(platform.store, clock=clock)
    lead_id = driver.create().stream_id
    clock.advance(hours=1)
    driver.move(lead_id, "proposal_sent")
    platform.projector.catch_up()
    platform.close()
    before = _leads(duck)
    assert before[0][3:] == (3, 3)

    # the same funnels with two stages swapped: the stored steps no longer hold
    text = DEFAULT_FUNNELS_FILE.read_text().replace('id = "proposal_sent"', 'id = "__swap__"')
    text = text.replace('id = "proposal_preparation"', 'id = "proposal_sent"')
    text = text.replace('id = "__swap__"', 'id = "proposal_preparation"')
    funnels_file = tmp_path / "funnels.toml"
    funnels_file.write_text(text)
    assert load_funnels(funnels_file)["out_of_court"].step_of("proposal_sent") == 2

    reopened = build(
        Settings(
            event_store_url=events,
            duckdb_path=duck,
            funnels_file=funnels_file,
            auth_secret=SecretStr(TEST_AUTH_SECRET),
        ),
        clock=clock,
    )
    assert reopened.projector.position == 0  # dropped: it will fold the log again
    reopened.projector.catch_up()
    reopened.close()
    assert _leads(duck)[0][3:] == (2, 2)


def test_unchanged_configuration_keeps_the_read_models(tmp_path: Path, clock: FakeClock) -> None:
    settings = Settings(
        event_store_url=f"sqlite:///{tmp_path}/events.sqlite",
        auth_secret=SecretStr(TEST_AUTH_SECRET),
        duckdb_path=tmp_path / "read_models.duckdb",
    )
    platform = build(settings, clock=clock)
    with TestClient(create_app(platform), headers=ACTOR) as client:
        created = client.post("/leads", json=new_lead_body(), headers=ACTOR)
        assert created.status_code == 201
        # the app's own projector folds it (a second catch_up beside it would share its
        # DuckDB connection)
        assert platform.projector.wait_for(created.json()["position"], timeout=10)
        position = platform.projector.position
    again = build(settings, clock=clock)
    assert again.projector.position == position
    again.close()


def test_read_models_built_before_the_deal_project_links_are_rebuilt_with_them(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Read models of a version without ``deals.project_id`` (and the invoices' deal
    columns) are dropped and folded again: the new columns are filled from the log."""
    from commands.projects import project_id_for_deal
    from tests.deal_helpers import SELLER, contracted_deal

    settings = Settings(
        event_store_url=f"sqlite:///{tmp_path}/events.sqlite",
        auth_secret=SecretStr(TEST_AUTH_SECRET),
        duckdb_path=tmp_path / "read_models.duckdb",
        process_managers=False,
    )
    platform = build(settings, clock=clock)
    with TestClient(create_app(platform, close_on_exit=False), headers=ACTOR) as client:
        deal_id = contracted_deal(client)
        invoice = {"number": "S-1", "amount": "17500.25", "organisation": "main"}
        client.post(f"/deals/{deal_id}/invoice", json=invoice, headers=SELLER)
        client.post(f"/deals/{deal_id}/close", json={"outcome": "won"}, headers=SELLER)
        platform.processes.run_once()
        wait = {"min_position": platform.store.last_position()}
        assert client.get("/deals", params=wait).json()["items"][0]["project_id"]
    platform.close()
    # as an earlier LeadLedger left them: no link columns, another fingerprint
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("ALTER TABLE deals DROP COLUMN project_id")
        con.execute("ALTER TABLE project_invoices DROP COLUMN deal_id")
        con.execute("UPDATE read_model_fingerprints SET fingerprint = 'an earlier version'")

    reopened = build(settings, clock=clock)
    assert reopened.projector.position == 0  # dropped: it will fold the log again
    reopened.projector.catch_up()
    reopened.close()
    project_id = str(project_id_for_deal(UUID(deal_id)))
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.execute(
            "SELECT project_id FROM deals WHERE deal_id = ?", [deal_id]
        ).fetchall() == [(project_id,)]
        assert con.execute(
            "SELECT number, i.deal_id, invoiced FROM project_invoices i JOIN projects "
            "USING (project_id)"
        ).fetchall() == [("S-1", deal_id, Decimal("17500.25"))]

"""The ``leadledger`` command line, run as a user would, in a scratch working directory."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from aggregates.users import Role
from leadledger.demo import ASSISTANT_LEADS, PERSON_LEADS
from tests.conftest import TEST_AUTH_SECRET

BIN = Path(sys.executable).parent / "leadledger"


DEMO_TOKEN_LINE = re.compile(r"^\s+(\w+)\s+(\S+)\s+([\w-]+\.[\w-]+\.[\w-]+)\s*$")


def _demo_tokens(proc: subprocess.Popen[bytes]) -> dict[str, tuple[str, str]]:
    """Role → (user, token) from the lines ``serve --demo`` printed."""
    assert proc.stdout is not None
    found: dict[str, tuple[str, str]] = {}
    while len(found) < len(Role):
        line = proc.stdout.readline().decode()
        assert line, f"serve stopped printing after {sorted(found)}"
        match = DEMO_TOKEN_LINE.match(line)
        if match:
            found[match.group(1)] = (match.group(2), match.group(3))
    return found


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLEDGER_")}
    env["LEADLEDGER_PROJECTOR_POLL_SECONDS"] = "0.1"
    env["LEADLEDGER_AUTH_SECRET"] = TEST_AUTH_SECRET
    return env


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        cwd=workdir,
        env=_env(workdir),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("command", ["serve", "demo", "project", "rebuild", "history"])
def test_every_command_has_help(tmp_path: Path, command: str) -> None:
    result = _run(tmp_path, command, "--help")
    assert result.returncode == 0
    assert "usage: leadledger " + command in result.stdout


def test_demo_project_rebuild_and_history(tmp_path: Path) -> None:
    demo = _run(tmp_path, "demo", "--leads", "40", "--deals", "6")
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "data" / "events.sqlite").exists()
    again = _run(tmp_path, "demo", "--leads", "40")
    assert again.returncode == 2
    assert "not empty" in again.stderr

    project = _run(tmp_path, "project", "--once")
    assert project.returncode == 0, project.stderr
    db = tmp_path / "data" / "read_models.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        projected = con.execute("SELECT * FROM leads ORDER BY lead_id").fetchall()
        visits = con.execute(
            "SELECT * FROM lead_stage_visits ORDER BY lead_id, visit_no"
        ).fetchall()
        lead_id, version = con.execute(
            "SELECT lead_id, version FROM leads ORDER BY version DESC, lead_id LIMIT 1"
        ).fetchone() or ("", 0)
    # each demo deal comes from a lead of its own (the expert-services chain's one and the
    # 2 expert sales too); five leads show seed 000's lead rules, and the private persons'
    assert len(projected) == 40 + 6 + 1 + 2 + 5 + len(PERSON_LEADS)

    rebuild = _run(tmp_path, "rebuild")
    assert rebuild.returncode == 0, rebuild.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT * FROM leads ORDER BY lead_id").fetchall() == projected
        assert (
            con.execute("SELECT * FROM lead_stage_visits ORDER BY lead_id, visit_no").fetchall()
            == visits
        )

    history = _run(tmp_path, "history", lead_id)
    assert history.returncode == 0, history.stderr
    assert f"({version} events)" in history.stdout
    assert "LeadCreated" in history.stdout
    assert history.stdout.count("\nv") == version

    unknown = _run(tmp_path, "history", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1
    assert "not found" in unknown.stderr
    bad = _run(tmp_path, "history", "not-a-uuid")
    assert bad.returncode == 2


def test_bad_configuration_is_reported_not_a_traceback(tmp_path: Path) -> None:
    env = _env(tmp_path) | {"LEADLEDGER_FUNNELS_FILE": str(tmp_path / "missing.toml")}
    result = subprocess.run(
        [str(BIN), "project", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "missing.toml" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_demo_answers_on_the_port(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(BIN),
            "serve",
            "--port",
            str(port),
            "--demo",
            "--demo-leads",
            "30",
            "--demo-deals",
            "3",
        ],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not answer in 90 s"
            time.sleep(0.3)
        assert health.json()["lag"] == 0
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        # the quickstart printed a token for a demo user of every role, before serving
        tokens = _demo_tokens(proc)
        assert set(tokens) == {r.value for r in Role}
        as_top = {"Authorization": f"Bearer {tokens['top'][1]}"}
        leads = httpx.get(f"{base}/leads", params={"limit": 5}, headers=as_top, timeout=5)
        # the demo's leads, one per deal, the expert-services chain's own, the 2 expert
        # sales, the assistant's, five that show seed 000's lead rules and the private
        # persons' (issue 18)
        assert leads.json()["total"] == (
            30 + 3 + 1 + 2 + len(ASSISTANT_LEADS) + 5 + len(PERSON_LEADS)
        )
        manager, manager_token = tokens["manager"]
        own = httpx.get(
            f"{base}/leads",
            params={"limit": 500},
            headers={"Authorization": f"Bearer {manager_token}"},
            timeout=5,
        ).json()
        assert 0 < own["total"] < 38 + len(PERSON_LEADS)
        assert {lead["manager"] for lead in own["items"]} == {manager}
        # the demo assistant works for that manager and sees what they see
        assisted = httpx.get(
            f"{base}/leads",
            params={"limit": 500},
            headers={"Authorization": f"Bearer {tokens['assistant'][1]}"},
            timeout=5,
        ).json()
        assert assisted["total"] == own["total"]
        assert httpx.get(f"{base}/leads", timeout=5).status_code == 401
        created = httpx.post(
            f"{base}/leads",
            json={
                "funnel": "court",
                "title": "t",
                "company_name": "c",
                "source": "court_request",
                "manager": "m",
            },
            headers=as_top,
            timeout=5,
        )
        assert created.status_code == 201
        position = created.json()["position"]
        lead = httpx.get(
            f"{base}/leads/{created.json()['lead_id']}",
            params={"min_position": position},
            headers=as_top,
            timeout=10,
        )
        assert lead.status_code == 200
        assert lead.json()["stage"] == "request_received"
        # an auditor's terminal works while the server holds the read models
        history = _run(tmp_path, "history", created.json()["lead_id"])
        assert history.returncode == 0, history.stderr
        assert "LeadCreated" in history.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)

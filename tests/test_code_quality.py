"""ruff and mypy, as configured in pyproject.toml, pass on the whole project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_passes() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes() -> None:
    result = _run(str(BIN / "mypy"), ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid_and_wires_every_service() -> None:
    """compose.yaml validates against the Compose specification, and production runs
    PostgreSQL, Kafka, the API and its three workers, each with what it needs."""
    import yaml

    result = _run(
        str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "kafka", "api", "projector", "process-managers", "relay"}
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["kafka"]
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    commands = {name: str(service.get("command", "")) for name, service in services.items()}
    assert "leadledger serve" in commands["api"]
    assert "leadledger project" in commands["projector"]
    assert "leadledger process" in commands["process-managers"]
    assert "leadledger relay" in commands["relay"]
    relay_env = services["relay"]["environment"]
    assert relay_env["LEADLEDGER_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert services["relay"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("api", "projector", "process-managers", "relay"):
        env = services[name]["environment"]
        assert env["LEADLEDGER_EVENT_STORE_URL"].startswith("postgresql://"), name
        # a setting the services are given must be one LeadLedger reads
        from leadledger.settings import Settings

        known = {f"LEADLEDGER_{field.upper()}" for field in Settings.model_fields}
        assert set(env) <= known, (name, set(env) - known)

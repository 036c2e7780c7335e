"""`pip install .` ships everything the platform reads at run time: the workspace's
templates (every folder), static files and vendored assets with their licences, the
compiled catalogues, the published event schemas and the packaged configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = (
    "workspace/templates/**/*.html",
    "workspace/static/**/*",
    "workspace/locale/*/LC_MESSAGES/*.mo",
    "schemas/published/**/*.json",
    "leadledger/config/*.toml",
)


@pytest.mark.slow
def test_the_wheel_holds_every_file_read_at_run_time(tmp_path: Path) -> None:
    # a copy of the sources without what earlier builds and runs left behind (a stale
    # build/ folder would put files in the wheel that the package data leaves out)
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "*.egg-info",
            "data",
            "__pycache__",
            ".*_cache",
            ".hypothesis",
            "artifacts",
            "dist",
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("leadledger-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {
        path.relative_to(source).as_posix()
        for pattern in SHIPPED
        for path in source.glob(pattern)
        if path.is_file()
    }
    assert any(name.startswith("workspace/templates/") and name.count("/") > 2 for name in expected)
    assert expected - names == set(), "files the platform reads are missing from the wheel"

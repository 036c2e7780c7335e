"""The read-model queries have one home, ``queries/`` (one module per resource), and the
JSON API, the workspace and the Excel renderer import the same query functions from it:
no module under ``read_api/`` or ``workspace/`` runs SQL of its own against the read
model, beyond the few exceptions named here with their reason."""

from __future__ import annotations

import ast
import tomllib
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL_METHODS = frozenset({"execute", "executemany", "sql", "query"})
"""DuckDB cursor methods that run SQL."""

ALLOWED: dict[str, tuple[int, str]] = {
    "read_api/routes/exports.py": (
        2,
        "the bulk export: COPY ... TO a file and a streamed Arrow reader of a whole table, "
        "not a query of the read model's rows",
    ),
    "read_api/access.py": (
        6,
        "the read scope itself: the scoped views are created on the cursor, who a head or "
        "an assistant acts for is looked up before any query runs, and whether a record "
        "or a stream is in the viewer's scope",
    ),
    "workspace/reports.py": (
        1,
        "the auditor's history search asks whether the record is in the viewer's scope "
        "(the access layer's VISIBLE_IDS), not the read model's rows",
    ),
}
"""Modules that may run SQL outside queries/ and projections/: how many calls, and why."""

OLD_MODULES = (
    "queries.py",
    "deal_queries.py",
    "project_queries.py",
    "status_time.py",
    "views.py",
    "deal_views.py",
)


def _sql_calls(path: Path) -> list[int]:
    """The lines of the calls of a SQL-running method in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SQL_METHODS
    ]


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_read_api_and_workspace_run_no_sql_of_their_own() -> None:
    found: Counter[str] = Counter()
    where: dict[str, list[int]] = {}
    for path in _modules("read_api", "workspace"):
        lines = _sql_calls(path)
        if lines:
            name = path.relative_to(ROOT).as_posix()
            found[name] = len(lines)
            where[name] = lines
    unexpected = {name: where[name] for name in found if name not in ALLOWED}
    assert unexpected == {}, "move these queries to queries/ and call them from there"
    for name, (calls, reason) in ALLOWED.items():
        assert found[name] <= calls, (name, where.get(name), reason)


def test_the_allowed_exceptions_still_exist() -> None:
    """An exception that no longer runs SQL is dropped from the list (no stale licence)."""
    for name in ALLOWED:
        assert (ROOT / name).is_file(), name
        assert _sql_calls(ROOT / name), name


def test_read_api_keeps_none_of_the_old_query_modules() -> None:
    assert [m for m in OLD_MODULES if (ROOT / "read_api" / m).exists()] == []


def test_every_resource_has_its_module() -> None:
    expected = {
        "__init__",
        "common",
        "leads",
        "history",
        "deals",
        "handoffs",
        "contractors",
        "alerts",
        "assignments",
        "revenue",
        "projects",
        "status_time",
        "users",
        "sensitive",
    }
    assert expected <= {p.stem for p in (ROOT / "queries").glob("*.py")}


def test_queries_depend_on_no_reader() -> None:
    """The queries sit below their readers: nothing in queries/ imports the API, the
    workspace or the Excel renderer."""
    for path in _modules("queries"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in {"read_api", "workspace"}, (path, name)


def test_rows_as_dicts_are_made_in_one_place() -> None:
    """Only queries/common.py turns a cursor's rows into dicts by column name."""
    makers = [
        path.relative_to(ROOT).as_posix()
        for path in _modules("queries", "read_api", "workspace")
        if ".description" in path.read_text(encoding="utf-8")
        and "dict(zip(" in path.read_text(encoding="utf-8")
    ]
    assert makers == ["queries/common.py"]


def test_the_package_ships_the_queries() -> None:
    """``pip install .`` puts queries/ in the wheel (tests/test_packaging.py builds it)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert (ROOT / "queries" / "__init__.py").is_file()
    assert any(fnmatch("queries", pattern) for pattern in include), include
    assert any(fnmatch("queries.common", pattern) for pattern in include), include

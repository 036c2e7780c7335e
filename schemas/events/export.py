"""The committed contract: one JSON Schema file per published event type and version.

``write_published`` writes ``<dir>/<EventType>/v<n>.json`` for every version ever
published plus ``<dir>/envelope/v1.json``; ``check_published`` tells what a change to the
models would do to the committed files. A committed version is frozen: its model may only
change compatibly (see :mod:`schemas.events.compat`); anything else is a new version.

``leadledger schemas export`` (re)writes the files, ``leadledger schemas check`` checks them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from schemas.events.compat import breaking_changes
from schemas.events.envelope import ENVELOPE_VERSION, EventEnvelope
from schemas.events.registry import ALL_VERSIONS, PublishedEventType

SCHEMA_BASE_URL = "https://leadledger.example/schemas/events"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "published"
ENVELOPE = "envelope"
EXPORT_HINT = "run `leadledger schemas export`"
_VERSION_FILE = re.compile(r"^v(?P<version>[1-9][0-9]*)\.json$")


def schema_id(name: str, version: int) -> str:
    return f"{SCHEMA_BASE_URL}/{name}/v{version}.json"


def published_schema(t: PublishedEventType) -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of one version of an event type's payload."""
    schema = t.model.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(t.name, t.version),
        **schema,
        "title": f"{t.name} v{t.version}",
        "x-aggregate-type": t.aggregate_type,
        "x-event-type": t.name,
        "x-schema-version": t.version,
    }


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of the envelope every published event travels in."""
    schema = EventEnvelope.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(ENVELOPE, ENVELOPE_VERSION),
        **schema,
        "title": f"Event envelope v{ENVELOPE_VERSION}",
        "x-schema-version": ENVELOPE_VERSION,
    }


def generated() -> dict[tuple[str, int], dict[str, Any]]:
    """Every schema file's content by (event type or ``envelope``, version)."""
    files = {key: published_schema(t) for key, t in ALL_VERSIONS.items()}
    files[(ENVELOPE, ENVELOPE_VERSION)] = envelope_schema()
    return files


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def path_of(directory: Path, name: str, version: int) -> Path:
    return directory / name / f"v{version}.json"


def write_published(directory: Path) -> list[Path]:
    """Write every schema file; return their paths. Files of versions no model publishes
    any more are left alone (``check_published`` reports them).

    This overwrites committed files whatever they say: check for ``breaking:`` problems
    first (``leadledger schemas export`` refuses to write over them).
    """
    files = generated()
    written: list[Path] = []
    for (name, version), schema in files.items():
        path = path_of(directory, name, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return sorted(written)


def committed(directory: Path) -> dict[tuple[str, int], Path]:
    """The schema files in ``directory`` by (event type or ``envelope``, version)."""
    found: dict[tuple[str, int], Path] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*/v*.json")):
        match = _VERSION_FILE.match(path.name)
        if match is not None:
            found[(path.parent.name, int(match["version"]))] = path
    return found


def check_published(directory: Path) -> list[str]:
    """What is wrong between the models and the committed files, one line per problem:

    - ``breaking:`` a committed version's model is not backward compatible with the file
      (publish the change as a new version instead);
    - ``missing:`` a committed version no model publishes any more, or a model version
      with no committed file;
    - ``stale:`` a committed file differs (compatibly) from what its model generates.
    """
    problems: list[str] = []
    expected = generated()
    files = committed(directory)
    for (name, version), path in files.items():
        label = f"{name} v{version}"
        schema = expected.get((name, version))
        if schema is None:
            problems.append(
                f"missing: {label} is committed ({path}) but no model publishes it any more"
            )
            continue
        text = path.read_text(encoding="utf-8")
        try:
            old = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"stale: {label}: {path} is not valid JSON ({exc}); {EXPORT_HINT}")
            continue
        breaking = breaking_changes(old, schema)
        if breaking:
            problems.extend(
                f"breaking: {label}: {problem} (publish the change as v{_next(name, expected)})"
                for problem in breaking
            )
        elif text != render(schema):
            problems.append(f"stale: {label}: {path} differs from its model; {EXPORT_HINT}")
    for name, version in expected:
        if (name, version) not in files:
            where = path_of(directory, name, version)
            problems.append(
                f"missing: {name} v{version} has no committed file {where}; {EXPORT_HINT}"
            )
    return problems


def _next(name: str, expected: dict[tuple[str, int], dict[str, Any]]) -> int:
    return max(v for n, v in expected if n == name) + 1

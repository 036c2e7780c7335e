"""Shared directories' read models: ``directory_entries`` (one row per entry: its kind,
title and fields as JSON) and ``directory_links`` (one row per live link of an entry to a
lead or a project, with its role).

A page's links and unlinks are netted in log order per (entry, target, role): the touched
links are deleted and those whose last event links them are inserted again, so folding
the log in any page sizes gives the rows one rebuild gives.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from projections.deals import (
    Column,
    KeyedFold,
    PageEvent,
    Row,
    _bigint,
    _insert,
    _int,
    _moment,
    _text,
)

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

ENTRY_COLUMNS: tuple[Column, ...] = (
    _text("entry_id"),
    _text("kind"),
    _text("title"),
    _text("fields"),
    _text("search"),
    _int("links"),
    _moment("created_at"),
    _text("created_by"),
    _moment("updated_at"),
    _int("version"),
    _bigint("last_position"),
)

LINK_COLUMNS: tuple[Column, ...] = (
    _text("entry_id"),
    _text("kind"),
    _text("target"),
    _text("target_id"),
    _text("role"),
    _moment("linked_at"),
    _text("linked_by"),
    _bigint("position"),
)
LINK_KEY = ("entry_id", "target", "target_id", "role")
LINK_TOPICS = frozenset({"DirectoryEntryLinked", "DirectoryEntryUnlinked"})


class DirectoryEntryProjection(KeyedFold):
    name = "directories"
    table = "directory_entries"
    tables: tuple[str, ...] = ("directory_entries", "directory_links")
    key = "entry_id"
    what = "directory entry"
    columns = ENTRY_COLUMNS
    topics = frozenset({"DirectoryEntryRegistered", "DirectoryEntryUpdated", *LINK_TOPICS})

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256((super().fingerprint + _SOURCE_DIGEST).encode()).hexdigest()

    def ddl_parts(self) -> list[tuple[str, tuple[Column, ...]]]:
        return [("directory_entries", ENTRY_COLUMNS), ("directory_links", LINK_COLUMNS)]

    def fold(self, row: Row | None, event: PageEvent) -> Row:
        doc = event.doc
        if event.topic == "DirectoryEntryRegistered":
            entry = self.new_row(
                entry_id=event.stream_id,
                kind=doc["kind"],
                links=0,
                created_at=event.moment,
                created_by=doc["actor"],
            )
        else:
            entry = self.require(row, event)
        entry["updated_at"] = event.moment
        if event.topic in ("DirectoryEntryRegistered", "DirectoryEntryUpdated"):
            fields: dict[str, Any] = doc["fields"]
            entry["fields"] = orjson.dumps(fields).decode()
            entry["title"] = doc["title"]
            entry["search"] = " ".join(str(v).lower() for v in fields.values() if v)
        elif event.topic == "DirectoryEntryLinked":
            entry["links"] += 1
        else:
            entry["links"] -= 1
        return entry

    def after_fold(self, cursor: duckdb.DuckDBPyConnection, events: list[PageEvent]) -> None:
        last: dict[tuple[str, ...], PageEvent] = {}
        for e in events:
            if e.topic in LINK_TOPICS:
                last[(e.stream_id, e.doc["target"], e.doc["target_id"], e.doc["role"])] = e
        if not last:
            return
        keys = sorted(last)
        touched = pa.table(
            {c: pa.array([k[i] for k in keys], pa.string()) for i, c in enumerate(LINK_KEY)}
        )
        cursor.register("_touched_links", touched)
        try:
            cursor.execute(
                "DELETE FROM directory_links USING _touched_links t WHERE "
                + " AND ".join(f"directory_links.{c} = t.{c}" for c in LINK_KEY)
            )
        finally:
            cursor.unregister("_touched_links")
        linked = [
            {
                "entry_id": k[0],
                "kind": e.doc["kind"],
                "target": k[1],
                "target_id": k[2],
                "role": k[3],
                "linked_at": e.moment,
                "linked_by": e.doc["actor"],
                "position": e.position,
            }
            for k in keys
            if (e := last[k]).topic == "DirectoryEntryLinked"
        ]
        if linked:
            _insert(cursor, "directory_links", LINK_COLUMNS, linked)

"""A LeadLedger event subscriber to copy: Kafka consumer group + exactly-once effects in SQLite.

LeadLedger delivers every event AT LEAST ONCE (a relay that crashes re-publishes what it
had not yet recorded as sent) and in order PER AGGREGATE (the key is the aggregate id).
So a subscriber must tolerate duplicates. This one does it the simple, robust way:

1. the handler's effect and the event's id go into ONE SQLite transaction, with the id
   in ``processed_events`` (primary key) — an event already recorded is skipped;
2. Kafka offsets are committed only AFTER the whole polled batch is in SQLite.

A crash anywhere therefore loses nothing (uncommitted offsets are polled again) and applies
nothing twice (the redelivered events are found in ``processed_events``).

    python -m examples.subscriber --bootstrap localhost:9092 \
        --topics leadledger.lead leadledger.deal --group my-service --db my-service.sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer  # type: ignore[import-untyped,unused-ignore]
from kafka.errors import CommitFailedError  # type: ignore[import-untyped,unused-ignore]

Handler = Callable[[sqlite3.Connection, dict[str, Any]], None]

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (
    event_id TEXT PRIMARY KEY, position INTEGER, type TEXT, processed_at TEXT NOT NULL
)"""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def apply_once(db: sqlite3.Connection, envelope: dict[str, Any], handle: Handler) -> bool:
    """Apply one event unless already done; True when applied. Effect + id commit together."""
    db.execute("BEGIN IMMEDIATE")
    try:
        recorded = db.execute(
            "INSERT INTO processed_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (envelope["event_id"], envelope["position"], envelope["type"], _now()),
        )
        if recorded.rowcount == 0:  # seen before: a redelivery
            db.execute("ROLLBACK")
            return False
        handle(db, envelope)
        db.execute("COMMIT")
        return True
    except BaseException:
        if db.in_transaction:  # neither the effect nor the id: the event comes back
            db.execute("ROLLBACK")
        raise


def run(
    bootstrap: str,
    topics: list[str],
    group_id: str,
    db_path: str,
    handle: Handler,
    stop: threading.Event | None = None,
    max_idle_seconds: float | None = None,
    **kafka_config: Any,
) -> int:
    """Consume ``topics`` until ``stop`` is set, or nothing arrived for ``max_idle_seconds``
    while partitions were assigned; the number of events applied (duplicates not counted).
    ``kafka_config`` adds or overrides KafkaConsumer settings (e.g. security_protocol, sasl_*)."""
    db = sqlite3.connect(db_path, isolation_level=None)  # we issue BEGIN/COMMIT ourselves
    db.execute("PRAGMA journal_mode=WAL")  # readers of the effects never block us
    db.execute(SCHEMA)
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,  # instances sharing a group split the partitions between them
        "enable_auto_commit": False,  # offsets move only after SQLite has the batch
        "auto_offset_reset": "earliest",  # a new group starts at the beginning of the log
        "session_timeout_ms": 10_000,  # a crashed instance's partitions move on after 10 s
    }
    consumer = KafkaConsumer(*topics, **(config | kafka_config))
    applied, last_seen = 0, time.monotonic()
    try:
        while not (stop and stop.is_set()):
            batch = consumer.poll(timeout_ms=500)  # {TopicPartition: [ConsumerRecord]}
            if not consumer.assignment():  # still joining the group: not idle yet
                last_seen = time.monotonic()
            if not batch:
                if max_idle_seconds is not None and time.monotonic() - last_seen > max_idle_seconds:
                    break
                continue
            for records in batch.values():  # one partition's records, in log order
                for record in records:
                    applied += apply_once(db, json.loads(record.value), handle)
            # Every record polled so far is in SQLite. A commit refused because the group
            # rebalanced meanwhile is harmless: the new owner re-reads and skips them.
            with contextlib.suppress(CommitFailedError):
                consumer.commit()
            last_seen = time.monotonic()
    finally:
        consumer.close(autocommit=False)
        db.close()
    return applied


def count_by_type(db: sqlite3.Connection, envelope: dict[str, Any]) -> None:
    """The default handler: how many events of each type. Replace with your own effect —
    write it through ``db`` only, so it commits (or not) with the event id."""
    db.execute("CREATE TABLE IF NOT EXISTS event_counts (type TEXT PRIMARY KEY, n INTEGER)")
    db.execute(
        "INSERT INTO event_counts VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1",
        (envelope["type"],),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bootstrap", default="localhost:9092", help="Kafka bootstrap servers")
    p.add_argument("--topics", nargs="+", default=["leadledger.lead"], help="topics to follow")
    p.add_argument("--group", required=True, help="consumer group id (one per service)")
    p.add_argument("--db", required=True, help="SQLite file for effects and processed ids")
    p.add_argument("--max-idle", type=float, help="exit after this many seconds without events")
    args = p.parse_args(argv)
    applied = run(
        args.bootstrap, args.topics, args.group, args.db, count_by_type, None, args.max_idle
    )
    print(f"applied {applied} events")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

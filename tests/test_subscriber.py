"""examples/subscriber.py against the real broker: relay-style envelopes, some delivered
twice (a relay that crashed re-publishes what it had not recorded as sent), applied exactly
once, in aggregate order, with the group's offsets committed to the end; and the same after
the subscriber is SIGKILLed part-way and started again."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped,unused-ignore]
from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]

from examples import subscriber
from tests.kafka_broker import Broker

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 3
AGGREGATES_PER_TYPE = 10
EVENTS_PER_AGGREGATE = 10
TYPES = {
    "lead": ("LeadCreated", "LeadStageChanged"),
    "deal": ("DealOpened", "DealStageChanged"),
}


def build_envelopes(seed: int = 7) -> list[dict[str, Any]]:
    """~200 envelopes for 20 aggregates, in global position order (aggregates interleaved)."""
    rng = random.Random(seed)
    aggregates = [
        (kind, str(uuid.UUID(int=rng.getrandbits(128))))
        for kind in TYPES
        for _ in range(AGGREGATES_PER_TYPE)
    ]
    turns = [a for a in aggregates for _ in range(EVENTS_PER_AGGREGATE)]
    rng.shuffle(turns)
    versions: Counter[str] = Counter()
    envelopes = []
    for position, (kind, aggregate_id) in enumerate(turns, start=1):
        versions[aggregate_id] += 1
        version = versions[aggregate_id]
        created, changed = TYPES[kind]
        envelopes.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "type": created if version == 1 else changed,
                "schema_version": 1,
                "aggregate_type": kind,
                "aggregate_id": aggregate_id,
                "aggregate_version": version,
                "position": position,
                "occurred_at": f"2026-01-05T09:{position // 60:02d}:{position % 60:02d}+00:00",
                "actor": "anna.sales",
                "command_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "correlation_id": None,
                "data": {"n": version},
            }
        )
    return envelopes


def with_redeliveries(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a relay publishes when it crashes twice before recording what it sent: after
    position 120 it starts again from 81, and after the last one again from 181."""
    by_position = {e["position"]: e for e in envelopes}
    positions = [*range(1, 121), *range(81, 201), *range(181, 201)]
    return [by_position[p] for p in positions]


def create_topics(bootstrap: str, topics: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in topics]
        )
    finally:
        admin.close()


def publish(
    bootstrap: str, prefix: str, envelopes: list[dict[str, Any]]
) -> dict[TopicPartition, int]:
    """As the relay does: topic per aggregate type, key = aggregate id, headers, JSON value.
    The end offset of each partition written to, as the broker acknowledged it."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = []
    try:
        for e in envelopes:
            headers = [
                ("event_type", e["type"].encode()),
                ("schema_version", str(e["schema_version"]).encode()),
                ("event_id", e["event_id"].encode()),
                ("position", str(e["position"]).encode()),
                ("correlation_id", b""),
                ("aggregate_type", e["aggregate_type"].encode()),
            ]
            future = producer.send(
                f"{prefix}.{e['aggregate_type']}",
                key=e["aggregate_id"].encode(),
                value=json.dumps(e).encode(),
                headers=headers,
            )
            sent.append(future)
        producer.flush(timeout=30)
    finally:
        producer.close()
    ends: dict[TopicPartition, int] = {}
    for future in sent:
        meta = future.get(timeout=10)
        tp = TopicPartition(meta.topic, meta.partition)
        ends[tp] = max(ends.get(tp, 0), meta.offset + 1)
    return ends


class Published(NamedTuple):
    topics: list[str]
    envelopes: list[dict[str, Any]]  # the distinct ones
    ends: dict[TopicPartition, int]  # end offset of every partition written to


@pytest.fixture
def published(kafka_broker: Broker, topic_prefix: str) -> Published:
    """Envelopes published to <prefix>.lead and <prefix>.deal, 60 of them twice."""
    topics = [f"{topic_prefix}.lead", f"{topic_prefix}.deal"]
    create_topics(kafka_broker.bootstrap, topics)
    envelopes = build_envelopes()
    ends = publish(kafka_broker.bootstrap, topic_prefix, with_redeliveries(envelopes))
    return Published(topics, envelopes, ends)


def record_effect(db: sqlite3.Connection, envelope: dict[str, Any]) -> None:
    """A test effect: one row per application, in order of application."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " event_id TEXT, aggregate_id TEXT, aggregate_version INTEGER)"
    )
    db.execute(
        "INSERT INTO effects (event_id, aggregate_id, aggregate_version) VALUES (?, ?, ?)",
        (envelope["event_id"], envelope["aggregate_id"], envelope["aggregate_version"]),
    )


def committed_offsets(bootstrap: str, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    """The group's committed offset of every partition of ``topics`` that has one."""
    probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        committed = {tp: probe.committed(tp) for tp in partitions}
        return {tp: offset for tp, offset in committed.items() if offset}
    finally:
        probe.close(autocommit=False)


def test_redelivered_events_apply_once_in_aggregate_order(
    kafka_broker: Broker, published: Published, tmp_path: Path
) -> None:
    topics, envelopes, ends = published
    db_path = str(tmp_path / "subscriber.sqlite")
    group = f"{topics[0]}-group"
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            subscriber.run(kafka_broker.bootstrap, topics, group, db_path, record_effect, stop, 2.0)
        )
    )
    thread.start()
    thread.join(timeout=30)
    stop.set()
    thread.join(timeout=10)
    assert result == [len(envelopes)]  # 260 delivered, 200 applied

    with sqlite3.connect(db_path) as db:
        effects = db.execute(
            "SELECT event_id, aggregate_id, aggregate_version FROM effects ORDER BY seq"
        ).fetchall()
        processed = {r[0] for r in db.execute("SELECT event_id FROM processed_events")}
    expected = {e["event_id"] for e in envelopes}
    assert sorted(e for e, _, _ in effects) == sorted(expected)  # each exactly once
    assert processed == expected
    applied_versions: dict[str, list[int]] = {}
    for _, aggregate_id, version in effects:
        applied_versions.setdefault(aggregate_id, []).append(version)
    assert len(applied_versions) == 2 * AGGREGATES_PER_TYPE
    for versions in applied_versions.values():
        assert versions == list(range(1, EVENTS_PER_AGGREGATE + 1))
    assert committed_offsets(kafka_broker.bootstrap, group, topics) == ends


# The first run, to be killed: the default handler made slow enough to be caught part-way,
# with a short session so that the broker soon gives its partitions to the next run.
SLOW_RUNNER = """
import sys, time
from examples import subscriber
def slow(db, envelope):
    time.sleep(0.02)
    subscriber.count_by_type(db, envelope)
subscriber.run(sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4], slow,
               session_timeout_ms=3000, heartbeat_interval_ms=1000)
"""


def count_processed(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            n: int = db.execute("SELECT count(*) FROM processed_events").fetchone()[0]
            return n
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


def test_killed_subscriber_resumes_without_applying_twice(
    kafka_broker: Broker, published: Published, tmp_path: Path
) -> None:
    topics, envelopes, ends = published
    db_path = tmp_path / "subscriber.sqlite"
    group = f"{topics[0]}-group"
    args = [kafka_broker.bootstrap, ",".join(topics), group, str(db_path)]
    first = subprocess.Popen([sys.executable, "-c", SLOW_RUNNER, *args], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while count_processed(db_path) < 60 and time.monotonic() < deadline:
            assert first.poll() is None, "the subscriber exited early"
            time.sleep(0.02)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    applied_before = count_processed(db_path)
    assert 60 <= applied_before < len(envelopes)

    # Started again with the same group and db, as documented (the default handler).
    second = subprocess.run(
        [sys.executable, "-m", "examples.subscriber", "--bootstrap", kafka_broker.bootstrap,
         "--topics", *topics, "--group", group, "--db", str(db_path), "--max-idle", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=40,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"applied {len(envelopes) - applied_before} events"

    with sqlite3.connect(db_path) as db:
        counts = dict(db.execute("SELECT type, n FROM event_counts").fetchall())
        processed = {r[0] for r in db.execute("SELECT event_id FROM processed_events")}
    assert counts == dict(Counter(e["type"] for e in envelopes))
    assert processed == {e["event_id"] for e in envelopes}
    assert committed_offsets(kafka_broker.bootstrap, group, topics) == ends

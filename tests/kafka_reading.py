"""Reading a topic back in full, with kafka-python and with confluent-kafka."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import orjson
from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaConsumer  # type: ignore[import-untyped]
from kafka import TopicPartition as KafkaTopicPartition


@dataclass(frozen=True)
class Received:
    topic: str
    partition: int
    offset: int
    key: bytes
    headers: dict[str, bytes]
    value: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(self.value)
        return loaded


def read_with_kafka_python(
    bootstrap: str, topics: list[str], expected: int, timeout: float = 60.0
) -> list[Received]:
    """Every message of the topics (no consumer group), waiting for at least ``expected``."""
    consumer: Any = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        existing = consumer.topics()
        parts = [
            KafkaTopicPartition(t, p)
            for t in topics
            if t in existing
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        received: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500, max_records=10_000).items():
                received += [
                    Received(
                        tp.topic,
                        tp.partition,
                        r.offset,
                        r.key,
                        {k: bytes(v) for k, v in r.headers},
                        r.value,
                    )
                    for r in records
                ]
        return received
    finally:
        consumer.close()


def _bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else value.encode()


def read_with_confluent(
    bootstrap: str, topics: list[str], partitions: int, expected: int, timeout: float = 60.0
) -> list[Received]:
    """The same with librdkafka (confluent-kafka), an independent client."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "leadledger-tests-unused",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign(
            [TopicPartition(t, p, 0) for t in topics for p in range(partitions)]  # offset 0
        )
        received: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=10_000, timeout=0.5):
                if m.error() is not None:
                    continue
                received.append(
                    Received(
                        m.topic() or "",
                        m.partition() or 0,
                        m.offset() or 0,
                        m.key() or b"",
                        {k: _bytes(v) for k, v in cast(list[tuple[str, Any]], m.headers() or [])},
                        m.value() or b"",
                    )
                )
        return received
    finally:
        consumer.close()

"""Publishing to Kafka with kafka-python: ``acks=all``, keyed by aggregate, ordered.

``KafkaSink.publish`` sends a batch of messages and returns only when the broker has
acknowledged every one of them (it raises otherwise), which is what lets the relay move
its position. Per-key order holds because a key always maps to one partition (the same
murmur2 partitioner Kafka's Java client uses) and one request per connection is in
flight, so a retried batch cannot overtake the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer  # type: ignore[import-untyped]
from kafka.admin import NewTopic  # type: ignore[import-untyped]
from kafka.errors import (  # type: ignore[import-untyped]
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.partitioner.default import murmur2  # type: ignore[import-untyped]

from relay.publishing import Message

log = logging.getLogger("leadledger.relay")


class PublishFailed(Exception):
    """The broker did not acknowledge every message of a batch."""


class KafkaSink:
    """A kafka-python producer and the topics it writes to."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        partitions: int = 3,
        replication_factor: int = 1,
        client_id: str = "leadledger-relay",
        request_timeout_ms: int = 10_000,
        delivery_timeout_ms: int = 30_000,
        stall_seconds: float = 2.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.client_id = client_id
        self.delivery_timeout_ms = delivery_timeout_ms
        self.stall_seconds = stall_seconds
        self._known_topics: set[str] = set()
        self._partition_counts: dict[str, int] = {}
        self._partition_of: dict[tuple[str, bytes], int] = {}
        self._producer: Any = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            acks="all",
            retries=2_147_483_647,
            max_in_flight_requests_per_connection=1,
            linger_ms=5,
            batch_size=1 << 20,
            max_request_size=16 << 20,
            request_timeout_ms=request_timeout_ms,
            delivery_timeout_ms=delivery_timeout_ms,
        )

    def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet, with the configured partitions."""
        missing = [t for t in topics if t not in self._known_topics]
        if not missing:
            return
        admin: Any = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=f"{self.client_id}-admin"
        )
        try:
            existing = set(admin.list_topics())
            new = [
                NewTopic(t, self.partitions, self.replication_factor)
                for t in missing
                if t not in existing
            ]
            if new:
                try:
                    admin.create_topics(new)
                    log.info("created topics %s", ", ".join(t.name for t in new))
                except TopicAlreadyExistsError:  # another relay was quicker
                    pass
        finally:
            admin.close()
        self._known_topics.update(missing)

    def _partition(self, topic: str, key: bytes) -> int:
        cached = self._partition_of.get((topic, key))
        if cached is not None:
            return cached
        count = self._partition_counts.get(topic)
        if count is None:
            partitions = self._producer.partitions_for(topic)
            count = self._partition_counts[topic] = len(partitions)
        partition: int = (murmur2(key) & 0x7FFFFFFF) % count
        if len(self._partition_of) > 200_000:
            self._partition_of.clear()
        self._partition_of[(topic, key)] = partition
        return partition

    def publish(self, messages: Sequence[Message]) -> None:
        """Send every message and wait until the broker acknowledged all of them."""
        if not messages:
            return
        self.ensure_topics(sorted({m.topic for m in messages}))
        send = self._producer.send
        futures = [
            send(
                m.topic,
                value=m.value,
                key=m.key,
                headers=m.headers,
                partition=self._partition(m.topic, m.key),
            )
            for m in messages
        ]
        self._await_acknowledgements(messages)
        for message, future in zip(messages, futures, strict=True):
            if not future.is_done:
                raise PublishFailed(f"event at position {message.position} was not acknowledged")
            if future.failed():
                raise PublishFailed(
                    f"event at position {message.position}: {future.exception!r}"
                ) from future.exception

    def _await_acknowledgements(self, messages: Sequence[Message]) -> None:
        """Wait for the broker, saying so in the log while it does not answer. The producer
        retries by itself until the delivery timeout; then the futures fail."""
        started = time.monotonic()
        deadline = started + self.delivery_timeout_ms / 1000 + 5
        while True:
            try:
                self._producer.flush(timeout=min(self.stall_seconds, deadline - time.monotonic()))
                return
            except KafkaTimeoutError as exc:
                waited = time.monotonic() - started
                if time.monotonic() >= deadline:
                    raise PublishFailed(f"no acknowledgement after {waited:.0f}s") from exc
                log.warning(
                    "relay: Kafka at %s has not acknowledged %d events (positions %d-%d) "
                    "after %.0fs; they are kept and retried",
                    self.bootstrap_servers,
                    len(messages),
                    messages[0].position,
                    messages[-1].position,
                    waited,
                )

    def close(self, timeout: float = 5.0) -> None:
        self._producer.close(timeout=timeout)

"""Publishing to Kafka: ``acks=all``, keyed by aggregate, ordered, acknowledged.

A sink sends a batch (``send``) and later waits until the broker acknowledged every
message of it (``wait``, which raises otherwise; it may wait for later batches too);
only then does the relay move its position. Per-key order holds because a key always
maps to one partition (the murmur2 partitioner of Kafka's Java client: computed here for
kafka-python, librdkafka's ``murmur2_random`` for confluent, so that both clients place a
key alike) and the producer never lets a retried batch overtake the next one.

Two clients are supported (``LEADLEDGER_KAFKA_CLIENT``):

- ``kafka-python`` (default): pure Python; its per-message cost (≈ 55-85 µs of CPU here)
  bounds the relay to about 10k events/s on one core;
- ``confluent``: confluent-kafka (librdkafka, C), idempotent producer; its own threads
  batch and send while the relay maps the next page (see ``bench/README.md``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from kafka import KafkaAdminClient, KafkaProducer  # type: ignore[import-untyped]
from kafka.admin import NewTopic  # type: ignore[import-untyped]
from kafka.errors import (  # type: ignore[import-untyped]
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.partitioner.default import murmur2  # type: ignore[import-untyped]

from relay.publishing import Message

log = logging.getLogger("leadledger.relay")

KAFKA_CLIENTS = ("kafka-python", "confluent")


class PublishFailed(Exception):
    """The broker did not acknowledge every message of a batch."""


class Pending(Protocol):
    """A batch sent and not yet known to be acknowledged."""

    first: int
    last: int
    count: int


class Sink(Protocol):
    """Where the relay's messages go."""

    def send(self, messages: Sequence[Message]) -> Pending: ...

    def wait(self, pending: Pending) -> None: ...

    def close(self, timeout: float = 5.0) -> None: ...


class Partitioner:
    """Kafka's default partition of a key: murmur2(key) mod the topic's partitions."""

    def __init__(self, partitions_of: Callable[[str], int], capacity: int = 500_000) -> None:
        self._partitions_of = partitions_of
        self._counts: dict[str, int] = {}
        self._cache: dict[tuple[str, bytes], int] = {}
        self._capacity = capacity

    def __call__(self, topic: str, key: bytes) -> int:
        cached = self._cache.get((topic, key))
        if cached is not None:
            return cached
        count = self._counts.get(topic)
        if count is None:
            count = self._counts[topic] = self._partitions_of(topic)
        partition: int = (murmur2(key) & 0x7FFFFFFF) % count
        if len(self._cache) >= self._capacity:  # forget the oldest key (insertion order)
            del self._cache[next(iter(self._cache))]
        self._cache[(topic, key)] = partition
        return partition


def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    partitions: int,
    replication_factor: int,
    client_id: str = "leadledger-relay-admin",
    timeout_ms: int = 10_000,
) -> None:
    """Create the topics that do not exist yet, with the configured partitions."""
    admin: Any = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(t, partitions, replication_factor) for t in topics if t not in existing]
        if new:
            try:
                admin.create_topics(new)
                log.info("created topics %s", ", ".join(t.name for t in new))
            except TopicAlreadyExistsError:  # another relay was quicker
                pass
    finally:
        admin.close()


class _Topics:
    """Creates each topic once per sink, before its first message."""

    def __init__(
        self,
        bootstrap_servers: str,
        partitions: int,
        replication_factor: int,
        timeout_ms: int = 10_000,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.replication_factor = replication_factor
        self._known: set[str] = set()

    def ensure(self, messages: Sequence[Message]) -> None:
        missing = sorted({m.topic for m in messages} - self._known)
        if missing:
            ensure_topics(self.bootstrap_servers, missing, self.partitions, self.replication_factor)
            self._known.update(missing)


def _stalled(bootstrap: str, pending: Pending, started: float) -> None:
    log.warning(
        "relay: Kafka at %s has not acknowledged %d events (positions %d-%d) after %.0fs; "
        "they are kept and retried",
        bootstrap,
        pending.count,
        pending.first,
        pending.last,
        time.monotonic() - started,
    )


@dataclass
class _Futures:
    first: int
    last: int
    count: int
    futures: list[Any]


class _SinkBase:
    """What both sinks share: their settings, topic creation, and ``publish``."""

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
        self.client_id = client_id
        self.request_timeout_ms = request_timeout_ms
        self.delivery_timeout_ms = delivery_timeout_ms
        self.stall_seconds = stall_seconds
        self._topics = _Topics(
            bootstrap_servers, partitions, replication_factor, request_timeout_ms
        )

    def send(self, messages: Sequence[Message]) -> Pending:
        raise NotImplementedError

    def wait(self, pending: Pending) -> None:
        raise NotImplementedError

    def prepare(self, topics: Sequence[str]) -> None:
        """Create the topics and fetch their partitions now rather than at the first send."""
        ensure_topics(
            self.bootstrap_servers,
            topics,
            self._topics.partitions,
            self._topics.replication_factor,
        )
        self._topics._known.update(topics)
        for topic in topics:
            self._metadata(topic)

    def _metadata(self, topic: str) -> None:
        raise NotImplementedError

    def publish(self, messages: Sequence[Message]) -> None:
        """Send and wait until the broker acknowledged every message."""
        if messages:
            self.wait(self.send(messages))


class KafkaSink(_SinkBase):
    """kafka-python's producer: acks=all, one request in flight per connection."""

    def __init__(self, bootstrap_servers: str, **options: Any) -> None:
        super().__init__(bootstrap_servers, **options)
        producer: Any = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            retries=2_147_483_647,
            max_in_flight_requests_per_connection=1,
            linger_ms=5,
            batch_size=1 << 20,
            max_request_size=16 << 20,
            request_timeout_ms=self.request_timeout_ms,
            delivery_timeout_ms=self.delivery_timeout_ms,
            bootstrap_timeout_ms=self.request_timeout_ms,
            max_block_ms=self.request_timeout_ms,
        )
        self._producer = producer
        # the closure holds the producer, not the sink: no reference cycle keeps a closed
        # sink's connections alive until the garbage collector runs
        self._partition = Partitioner(lambda topic: len(producer.partitions_for(topic)))

    def _metadata(self, topic: str) -> None:
        self._partition(topic, b"")

    def send(self, messages: Sequence[Message]) -> _Futures:
        self._topics.ensure(messages)
        send, partition = self._producer.send, self._partition
        futures = [
            send(
                m.topic,
                value=m.value,
                key=m.key,
                headers=m.headers,
                partition=partition(m.topic, m.key),
            )
            for m in messages
        ]
        return _Futures(messages[0].position, messages[-1].position, len(messages), futures)

    def wait(self, pending: Pending) -> None:
        """Wait for the broker, saying so in the log while it does not answer. The producer
        retries by itself until the delivery timeout; then the futures fail."""
        assert isinstance(pending, _Futures)
        started = time.monotonic()
        deadline = started + self.delivery_timeout_ms / 1000 + 5
        while not all(f.is_done for f in pending.futures):
            try:
                self._producer.flush(timeout=min(self.stall_seconds, deadline - time.monotonic()))
            except KafkaTimeoutError as exc:
                if time.monotonic() >= deadline:
                    raise PublishFailed(
                        f"no acknowledgement after {time.monotonic() - started:.0f}s"
                    ) from exc
                _stalled(self.bootstrap_servers, pending, started)
        for future in pending.futures:
            if future.failed():
                raise PublishFailed(f"{future.exception!r}") from future.exception

    def close(self, timeout: float = 5.0) -> None:
        self._producer.close(timeout=timeout)


@dataclass
class _Queued:
    first: int
    last: int
    count: int


class ConfluentSink(_SinkBase):
    """confluent-kafka's producer: idempotent (acks=all, no reordering or duplicates from
    its own retries), batching and sending on librdkafka's threads.

    The cheap path per message: librdkafka places each key itself (``murmur2_random``,
    the Java client's partitioner: the same partition as ``Partitioner``) and reports
    only failed deliveries (``delivery.report.only.error``), so a delivered message costs
    no Python call. ``wait`` therefore waits until the producer holds nothing more
    (``flush``, which also sends at once instead of lingering): every batch sent so far
    acknowledged, the one waited for included, and any failure among them fails it."""

    def __init__(self, bootstrap_servers: str, **options: Any) -> None:
        from confluent_kafka import Producer

        super().__init__(bootstrap_servers, **options)
        self._errors: list[str] = []
        errors = self._errors

        def failed(error: Any, _message: Any) -> None:
            errors.append(str(error))

        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": self.client_id,
                "acks": "all",
                "enable.idempotence": True,
                "max.in.flight.requests.per.connection": 1,
                "linger.ms": 5,
                "batch.size": 1 << 20,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 1 << 20,
                "request.timeout.ms": self.request_timeout_ms,
                "message.timeout.ms": self.delivery_timeout_ms,
                "partitioner": "murmur2_random",
                "delivery.report.only.error": True,
                "on_delivery": failed,
            }
        )

    def _metadata(self, topic: str) -> None:
        self._producer.list_topics(topic, timeout=self.request_timeout_ms / 1000)

    def send(self, messages: Sequence[Message]) -> _Queued:
        self._topics.ensure(messages)
        producer = self._producer
        produce = producer.produce
        for m in messages:
            try:
                produce(m.topic, m.value, m.key, headers=cast(Any, m.headers))
            except BufferError:  # the local queue is full: let librdkafka drain it
                while True:
                    producer.poll(0.05)
                    try:
                        produce(m.topic, m.value, m.key, headers=cast(Any, m.headers))
                        break
                    except BufferError:
                        continue
        producer.poll(0)
        return _Queued(messages[0].position, messages[-1].position, len(messages))

    def wait(self, pending: Pending) -> None:
        assert isinstance(pending, _Queued)
        started = time.monotonic()
        deadline = started + self.delivery_timeout_ms / 1000 + 5
        while self._producer.flush(min(self.stall_seconds, max(0.0, deadline - time.monotonic()))):
            now = time.monotonic()
            if now >= deadline:
                raise PublishFailed(f"no acknowledgement after {now - started:.0f}s")
            _stalled(self.bootstrap_servers, pending, started)
        if self._errors:
            raise PublishFailed(f"{len(self._errors)} not delivered: {self._errors[0]}")

    def close(self, timeout: float = 5.0) -> None:
        if timeout > 0:
            self._producer.flush(timeout)
        else:  # drop what is queued: the relay sends it again from its stored position
            self._producer.purge()


def connect(client: str, bootstrap_servers: str, **options: Any) -> KafkaSink | ConfluentSink:
    if client == "kafka-python":
        return KafkaSink(bootstrap_servers, **options)
    if client == "confluent":
        return ConfluentSink(bootstrap_servers, **options)
    raise ValueError(f"unknown Kafka client '{client}': use one of {', '.join(KAFKA_CLIENTS)}")

"""Read models of the alert inboxes:

- ``alert_reads``: one row per alert its recipient marked read (who, when, at which
  position of the log). An alert is unread while it has no row here; the alerts
  themselves are :class:`projections.deals.AlertProjection`'s.
- ``alert_counts``: per recipient, how many alerts were raised to them and how many of
  those they read, so that the unread count every page's header shows is one row.
  (An ``AlertsRead`` names only alerts of the reader's not read before, so the counts
  add up.)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow as pa

from projections.deals import ALERTS, page_events, raised_alert

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

ALERT_READS_DDL = (
    "CREATE TABLE IF NOT EXISTS alert_reads (alert_id BIGINT PRIMARY KEY, reader VARCHAR, "
    "read_at TIMESTAMPTZ, position BIGINT)"
)
ALERT_COUNTS_DDL = (
    "CREATE TABLE IF NOT EXISTS alert_counts (recipient VARCHAR PRIMARY KEY, "
    "raised BIGINT NOT NULL, read BIGINT NOT NULL)"
)


class AlertReadProjection:
    name = "alert_reads"
    tables: tuple[str, ...] = ("alert_reads", "alert_counts")
    topics: frozenset[str] = frozenset({"AlertsRead", *ALERTS})

    @property
    def fingerprint(self) -> str:
        parts = [self.name, _SOURCE_DIGEST, *sorted(ALERTS)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ALERT_READS_DDL)
        cursor.execute(ALERT_COUNTS_DDL)

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        raised: Counter[str] = Counter()
        read: Counter[str] = Counter()
        for e in page_events(page, self.topics):
            if e.topic == "AlertsRead":
                read[e.doc["username"]] += len(e.doc["alert_ids"])
            elif (alert := raised_alert(e)) is not None:
                raised[alert.recipient] += 1
        if not raised and not read:
            return
        cursor.execute(
            """
            INSERT INTO alert_reads
            SELECT CAST(unnest(CAST(json_extract(state, '$.alert_ids') AS BIGINT[])) AS BIGINT),
                   json_extract_string(state, '$.username'),
                   CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ),
                   position
            FROM _page WHERE topic = 'AlertsRead'
            """
        )
        people = sorted(set(raised) | set(read))
        cursor.execute(
            """
            INSERT INTO alert_counts
            SELECT unnest(?), unnest(?), unnest(?)
            ON CONFLICT (recipient) DO UPDATE SET
                raised = alert_counts.raised + excluded.raised,
                read = alert_counts.read + excluded.read
            """,
            [people, [raised[p] for p in people], [read[p] for p in people]],
        )

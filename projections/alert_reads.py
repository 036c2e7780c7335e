"""Read model of the alert inboxes: ``alert_reads``, one row per alert a recipient marked
read (who, when, at which position of the log). An alert is unread while it has no row
here; the alerts themselves are :class:`projections.deals.AlertProjection`'s."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

ALERT_READS_DDL = (
    "CREATE TABLE IF NOT EXISTS alert_reads (alert_id BIGINT PRIMARY KEY, reader VARCHAR, "
    "read_at TIMESTAMPTZ, position BIGINT)"
)


class AlertReadProjection:
    name = "alert_reads"
    tables: tuple[str, ...] = ("alert_reads",)
    topics: frozenset[str] = frozenset({"AlertsRead"})

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.name}\n{_SOURCE_DIGEST}".encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(ALERT_READS_DDL)

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        # an alert is read once (the inbox records only alerts not read before); the
        # first mark wins should a page hold it twice
        cursor.execute(
            """
            INSERT OR IGNORE INTO alert_reads
            SELECT alert_id, reader, read_at, position FROM (
                SELECT CAST(unnest(CAST(json_extract(state, '$.alert_ids') AS BIGINT[]))
                            AS BIGINT) AS alert_id,
                       json_extract_string(state, '$.username') AS reader,
                       CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ) AS read_at,
                       position
                FROM _page WHERE topic = 'AlertsRead'
            )
            QUALIFY row_number() OVER (PARTITION BY alert_id ORDER BY position) = 1
            """
        )

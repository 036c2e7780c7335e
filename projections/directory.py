"""The user directory (``users``, with the managers each assistant works for), the
people's hourly cost rates (``user_cost_rates``: one row per person and first day, the
last rate set for that day) and the log of reads of sensitive information
(``sensitive_reads``).

``users`` is what a head's scope is read from (their department's people); it holds no
secrets. ``sensitive_reads`` records who read which lead's sensitive section and when,
never the section itself.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

USERS_DDL = (
    "CREATE TABLE IF NOT EXISTS users (username VARCHAR PRIMARY KEY, name VARCHAR, "
    "role VARCHAR, department VARCHAR, region VARCHAR, active BOOLEAN, "
    "created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, version INTEGER, managers VARCHAR[], "
    "city VARCHAR, email VARCHAR)"
)
READS_DDL = (
    "CREATE TABLE IF NOT EXISTS sensitive_reads (position BIGINT, lead_id VARCHAR, "
    "subject_id VARCHAR, actor VARCHAR, actor_role VARCHAR, outcome VARCHAR, "
    "read_at TIMESTAMPTZ)"
)
RATES_DDL = (
    "CREATE TABLE IF NOT EXISTS user_cost_rates (username VARCHAR, valid_from DATE, "
    "rate DECIMAL(18,2), currency VARCHAR, reason VARCHAR, set_by VARCHAR, "
    "set_at TIMESTAMPTZ, position BIGINT)"
)
USER_FIELDS = ("username", "name", "role", "department", "region", "active")
CONTACT_FIELDS = ("city", "email")


class DirectoryProjection:
    name = "directory"
    tables: tuple[str, ...] = ("users", "sensitive_reads", "user_cost_rates")
    topics: frozenset[str] = frozenset(
        {
            "UserRegistered",
            "UserChanged",
            "AssistantManagersSet",
            "LeadSensitiveInfoViewed",
            "UserCostRateSet",
        }
    )

    _topic_values = pa.array(sorted(topics), pa.string())

    @property
    def fingerprint(self) -> str:
        return _SOURCE_DIGEST

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(USERS_DDL)
        cursor.execute(READS_DDL)
        cursor.execute(RATES_DDL)

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        # a page without people's events (most of a rebuild's): no statement at all
        if not pc.any(pc.is_in(page["topic"], value_set=self._topic_values)).as_py():
            return
        cursor.execute(
            """
            INSERT INTO sensitive_reads
            SELECT position, json_extract_string(state, '$.lead_id'),
                   json_extract_string(state, '$.subject_id'),
                   json_extract_string(state, '$.actor'),
                   json_extract_string(state, '$.actor_role'),
                   json_extract_string(state, '$.outcome'),
                   CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ)
            FROM _page WHERE topic = 'LeadSensitiveInfoViewed'
            """
        )
        # a person's rate for a day: the last one set for it (replacing any stored one)
        cursor.execute(
            """
            CREATE OR REPLACE TEMP TABLE _rates AS
            SELECT json_extract_string(state, '$.username') AS username,
                   CAST(json_extract_string(state, '$.valid_from') AS DATE) AS valid_from,
                   CAST(json_extract_string(state, '$.rate') AS DECIMAL(18,2)) AS rate,
                   json_extract_string(state, '$.currency') AS currency,
                   json_extract_string(state, '$.reason') AS reason,
                   json_extract_string(state, '$.actor') AS set_by,
                   CAST(json_extract_string(state, '$.at') AS TIMESTAMPTZ) AS set_at,
                   position
            FROM _page WHERE topic = 'UserCostRateSet'
            QUALIFY row_number() OVER (PARTITION BY username, valid_from
                                       ORDER BY position DESC) = 1
            """
        )
        cursor.execute(
            "DELETE FROM user_cost_rates USING _rates r WHERE "
            "user_cost_rates.username = r.username AND user_cost_rates.valid_from = r.valid_from"
        )
        cursor.execute("INSERT INTO user_cost_rates SELECT * FROM _rates")
        cursor.execute("DROP TABLE _rates")
        rows = cursor.execute(
            "SELECT topic, state FROM _page WHERE topic IN "
            "('UserRegistered', 'UserChanged', 'AssistantManagersSet') ORDER BY position"
        ).fetchall()
        if not rows:
            return
        users: dict[str, dict[str, Any]] = {}
        for topic, state in rows:
            event = orjson.loads(state)
            name = event["username"]
            if topic == "UserRegistered":
                users[name] = {f: event.get(f) for f in (*USER_FIELDS, *CONTACT_FIELDS)} | {
                    "active": True,
                    "created_at": event["at"],
                    "version": 1,
                    "managers": [],
                }
            else:
                user = users.get(name)
                if user is None:
                    found = cursor.execute(
                        "SELECT username, name, role, department, region, active, "
                        "created_at, version, managers, city, email FROM users "
                        "WHERE username = ?",
                        [name],
                    ).fetchone()
                    if found is None:
                        continue
                    columns = (*USER_FIELDS, "created_at", "version", "managers", *CONTACT_FIELDS)
                    user = dict(zip(columns, found, strict=True))
                    users[name] = user
                if topic == "AssistantManagersSet":
                    user["managers"] = list(event["managers"])
                else:
                    user.update(event["changes"])
                user["version"] += 1
            users[name]["updated_at"] = event["at"]
        names = list(users)
        cursor.execute("DELETE FROM users WHERE username IN (SELECT unnest(?))", [names])
        for user in users.values():
            cursor.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMPTZ), "
                "CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?)",
                [
                    user["username"],
                    user["name"],
                    user["role"],
                    user["department"],
                    user["region"],
                    user["active"],
                    str(user["created_at"]),
                    str(user["updated_at"]),
                    user["version"],
                    user["managers"] or [],
                    user["city"],
                    user["email"],
                ],
            )

"""The conversion cohorts' read models (issue 16 §1, §4): the lead → quality → deal → won →
project steps of every lead, and each month's cohorts already counted.

- ``lead_cohorts``: one row per lead: its funnel now, creation instant, day and month
  (UTC), whether it reached each step (``r_quality``, ``r_deals``, ``r_won``,
  ``r_projects``: a later step counts for the earlier ones) and how long each step took in
  days (``to_quality``, ``to_deal``, ``to_won``, ``to_project``), computed from ``leads``,
  ``deals`` and ``projects`` exactly as queries/conversion.py documents;
- ``cohort_months``: per month of creation, per funnel (``level`` 0) and over the funnels
  (``level`` 1, ``funnel`` NULL): the leads, how many reached each step, and each step's
  median and 90th percentile (interpolated), with the month's first instant and the next
  month's (``month_start``, ``month_next``), so a report over whole months reads them as
  they are.

The projection runs after the leads', deals' and projects' read models, in the same
transaction: the leads a page can change (a lead event that sets its funnel, quality,
deal or project; a deal created, closed or given a project; a project created) get their
row again from the three read models, and every month of creation of a changed lead is
counted again from ``lead_cohorts``. Folding the log in any page sizes gives the rows one
rebuild gives.

``COHORT_ROWS_SQL`` and ``MONTHS_SQL`` are also the scoped viewers' views (read_api/access):
over the leads, deals and projects a viewer sees, computed when read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

DAYS = "(epoch({to}) - epoch({frm})) / 86400.0"
STEPS: dict[str, str] = {
    "to_quality": DAYS.format(to="l.qualified_at", frm="l.created_at"),
    "to_deal": DAYS.format(to="d.created_at", frm="coalesce(l.qualified_at, l.created_at)"),
    "to_won": (
        f"CASE WHEN d.status = 'won' THEN {DAYS.format(to='d.closed_at', frm='d.created_at')} END"
    ),
    "to_project": DAYS.format(
        to="p.created_at",
        frm="CASE WHEN d.status = 'won' THEN d.closed_at ELSE l.created_at END",
    ),
}
"""Each step's time in days, where both of its ends are known."""
REACHED: dict[str, str] = {
    "projects": "p.project_id IS NOT NULL",
    "won": "(d.status = 'won' OR p.project_id IS NOT NULL)",
    "deals": "(d.deal_id IS NOT NULL OR p.project_id IS NOT NULL)",
    "quality": (
        "(coalesce(l.quality, FALSE) OR d.deal_id IS NOT NULL OR p.project_id IS NOT NULL)"
    ),
}
"""Whether a lead reached each step (or a later one)."""

DAY = "CAST(epoch_us({column}) // 86400000000 AS INTEGER)"
MONTH_OF_DAY = "strftime(DATE '1970-01-01' + {day}, '%Y-%m')"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("lead_id", "VARCHAR"),
    ("funnel", "VARCHAR"),
    ("created_at", "TIMESTAMPTZ"),
    ("day", "INTEGER"),
    ("month", "VARCHAR"),
    *((f"r_{n}", "BOOLEAN") for n in REACHED),
    *((s, "DOUBLE") for s in STEPS),
)
MONTH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("month", "VARCHAR"),
    ("funnel", "VARCHAR"),
    ("level", "INTEGER"),
    ("month_start", "TIMESTAMPTZ"),
    ("month_next", "TIMESTAMPTZ"),
    ("leads", "BIGINT"),
    *((n, "BIGINT") for n in REACHED),
    *((f"{s}_{q}", "DOUBLE") for s in STEPS for q in ("median", "p90")),
)

# Each lead's row from the leads, deals and projects the names read (``{where}``: which).
COHORT_ROWS_SQL = (
    "SELECT l.lead_id, l.funnel, l.created_at, "
    + DAY.format(column="l.created_at")
    + " AS day, "
    + MONTH_OF_DAY.format(day=DAY.format(column="l.created_at"))
    + " AS month, "
    + ", ".join(f"{cond} AS r_{n}" for n, cond in REACHED.items())
    + ", "
    + ", ".join(f"{expr} AS {s}" for s, expr in STEPS.items())
    + " FROM leads AS l LEFT JOIN deals AS d ON d.deal_id = l.deal_id"
    " LEFT JOIN projects AS p ON p.project_id = coalesce(l.project_id, d.project_id){where}"
)

# Each month's cohorts from the lead rows the name reads (``{where}``: which months).
MONTHS_SQL = (
    "SELECT month, funnel, CAST(grouping(funnel) AS INTEGER) AS level, "
    "CAST(strptime(month || '-01', '%Y-%m-%d') AS TIMESTAMP) AT TIME ZONE 'UTC' AS month_start,"
    " (CAST(strptime(month || '-01', '%Y-%m-%d') AS TIMESTAMP) + INTERVAL 1 MONTH)"
    " AT TIME ZONE 'UTC' AS month_next, count(*) AS leads, "
    + ", ".join(f"count(*) FILTER (WHERE r_{n}) AS {n}" for n in REACHED)
    + ", "
    + ", ".join(
        f"quantile_cont({s}, 0.5) FILTER (WHERE {s} >= 0) AS {s}_median, "
        f"quantile_cont({s}, 0.9) FILTER (WHERE {s} >= 0) AS {s}_p90"
        for s in STEPS
    )
    + " FROM {rows}{where} GROUP BY GROUPING SETS ((month, funnel), (month))"
)

LEAD_TOPICS = frozenset(
    {
        "LeadCreated",
        "LeadTransferred",
        "LeadQualified",
        "LeadConvertedToDeal",
        "LeadProjectStarted",
    }
)
DEAL_TOPICS = frozenset({"DealCreated", "DealClosed", "DealProjectStarted"})
PROJECT_TOPICS = frozenset({"ProjectCreated"})


def _in(topics: frozenset[str]) -> str:
    return ", ".join(f"'{t}'" for t in sorted(topics))


def _ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


# The leads a page's deal and project events touch (their ids: ``$deals``, ``$projects``).
TOUCHED_SQL = """
SELECT lead_id FROM leads
WHERE deal_id IN (SELECT unnest($deals))
  OR project_id IN (SELECT unnest($projects))
  OR deal_id IN (SELECT deal_id FROM deals WHERE project_id IN (SELECT unnest($projects)))
"""

# The touched leads' months (``$touched``: their ids), read before and after their rows
# are written.
MONTHS_OF_SQL = "SELECT DISTINCT month FROM lead_cohorts WHERE lead_id IN (SELECT unnest($touched))"

# The touched leads' rows again, then the touched months (``$months``) counted again.
WRITE_SQL = (
    "DELETE FROM lead_cohorts WHERE lead_id IN (SELECT unnest($touched))",
    "INSERT INTO lead_cohorts "
    + COHORT_ROWS_SQL.format(where=" WHERE l.lead_id IN (SELECT unnest($touched))")
    + " ORDER BY l.created_at",
)
MONTHS_WRITE_SQL = (
    "DELETE FROM cohort_months WHERE month IN (SELECT unnest($months))",
    "INSERT INTO cohort_months "
    + MONTHS_SQL.format(rows="lead_cohorts", where=" WHERE month IN (SELECT unnest($months))"),
)


class CohortProjection:
    """``lead_cohorts`` and ``cohort_months`` (register it after the leads', deals' and
    projects' projections)."""

    name = "cohorts"
    tables: tuple[str, ...] = ("lead_cohorts", "cohort_months")
    topics: frozenset[str] = LEAD_TOPICS | DEAL_TOPICS | PROJECT_TOPICS

    def __init__(self) -> None:
        self._topic_values = pa.array(sorted(self.topics), pa.string())
        self._other_values = pa.array(sorted(DEAL_TOPICS | PROJECT_TOPICS), pa.string())
        self._lead_values = pa.array(sorted(LEAD_TOPICS), pa.string())
        self._deal_values = pa.array(sorted(DEAL_TOPICS), pa.string())
        self._project_values = pa.array(sorted(PROJECT_TOPICS), pa.string())

    @property
    def fingerprint(self) -> str:
        parts = [
            self.name,
            _ddl("lead_cohorts", COLUMNS),
            _ddl("cohort_months", MONTH_COLUMNS),
            TOUCHED_SQL,
            MONTHS_OF_SQL,
            *WRITE_SQL,
            *MONTHS_WRITE_SQL,
            _SOURCE_DIGEST,
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(_ddl("lead_cohorts", COLUMNS))
        cursor.execute(_ddl("cohort_months", MONTH_COLUMNS))

    def derive_all(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Every row again from the leads, deals and projects as they stand (for read
        models written without the projector, as benches fill them)."""
        cursor.execute("DELETE FROM lead_cohorts")
        cursor.execute("DELETE FROM cohort_months")
        cursor.execute(
            "INSERT INTO lead_cohorts "
            + COHORT_ROWS_SQL.format(where="")
            + " ORDER BY l.created_at"
        )
        cursor.execute(
            "INSERT INTO cohort_months " + MONTHS_SQL.format(rows="lead_cohorts", where="")
        )

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        topic = page["topic"]
        if not pc.any(pc.is_in(topic, value_set=self._topic_values)).as_py():
            return
        # the touched leads found in the page's Arrow columns (the leads table is read
        # only when a deal or project event may touch its leads), then passed to the
        # statements as parameters: no temporary tables, no read of the page in DuckDB
        streams = page["stream_id"]
        touched = set(streams.filter(pc.is_in(topic, value_set=self._lead_values)).to_pylist())
        if pc.any(pc.is_in(topic, value_set=self._other_values)).as_py():
            deals = streams.filter(pc.is_in(topic, value_set=self._deal_values)).to_pylist()
            projects = streams.filter(pc.is_in(topic, value_set=self._project_values)).to_pylist()
            found = cursor.execute(TOUCHED_SQL, {"deals": deals, "projects": projects})
            touched.update(lead_id for (lead_id,) in found.fetchall())
        if not touched:
            return
        ids = {"touched": sorted(touched)}
        months = {m for (m,) in cursor.execute(MONTHS_OF_SQL, ids).fetchall()}
        for statement in WRITE_SQL:
            cursor.execute(statement, ids)
        months.update(m for (m,) in cursor.execute(MONTHS_OF_SQL, ids).fetchall())
        for statement in MONTHS_WRITE_SQL:
            cursor.execute(statement, {"months": sorted(months)})

"""The process map's months (issue 16 §3, §4): what a long period's map needs, counted per
month, so that a year's map sums twelve months of rows instead of reading every visit.

One table per kind of record (``lead_process_months``, ``deal_process_months``,
``project_process_months``), derived from the process visits (projections/process.py).
A case belongs to the month (UTC) of its first entry (``first_at``: the map's period
picks cases by it), its funnel and its ``owner`` (a lead's or deal's responsible manager,
a project's department: the department filter reads it, with the directory). Each row is
one ``part`` of the map in one such month, funnel and owner:

- ``node`` rows, per stage and wait bucket: ``n`` visits, ``records`` (first visits of
  the stage in their case), ``starts`` (first visits of a case) and ``ends`` (a case's
  last visit, left). The bucket of a visit that has left is its wait's; a visit still
  open has none (NULL): its wait depends on the instant asked, and the query measures it;
- ``edge`` rows, per directly-follows pair and bucket of the time it took: ``n`` moves,
  ``records`` (first moves along the edge in their case);
- ``path`` rows, per path (variant), its ``steps`` and the bucket of its duration (first
  entry to last entry): ``n`` cases.

Each owner's rows are also summed per month and funnel over every owner (``everyone``)
and, for leads and deals, over each ``department``'s people in the directory (``users``,
as it stands: a page with a directory event sums them again), so that a long period's
map of everyone or of a department reads its own rows, not every owner's.

``min_at`` and ``max_at`` are the earliest entry and the latest entry or exit among the
row's cases: the query reads the months only when they all lie inside the period and
before the instant asked.

**Buckets** are log-spaced: a time of ``t`` microseconds (t > 0) falls in bucket
``floor(ln t / ln 1.04)``, 0 µs in bucket -1. Histograms merge by summing counts; a
quantile is read from the cumulative counts as ``quantile_cont`` reads the sorted times
(interpolating between the two neighbouring ranks), each rank's time taken as its bucket's
geometric middle ``1.04 ** (b + 0.5)``, within ``sqrt(1.04) - 1`` (1.98 %) of the true
time: the quantile is within 2 % of the exact one (``RELATIVE_ERROR``).

The projection runs after the process visits, in the same transaction. It keeps, per case,
its month, funnel and owner (``{kind}_process_month_cases``): for every record a page
touches, the months, funnels and owners it was counted in and is counted in now are
counted again from the process visits (an owner change moves a case from one owner's rows
to another's). Folding the log in any page sizes gives the rows one rebuild gives.

``ROWS_SQL`` is also the scoped viewers' view (read_api/access): over the process visits a
viewer sees, computed when read.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from projections.process import KINDS, ProcessKind

_SOURCE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

GROWTH = 1.04
"""The ratio of a bucket's upper bound to its lower bound."""
RELATIVE_ERROR = math.sqrt(GROWTH) - 1
"""The bound on a quantile's relative error (1.98 %)."""

MONTH = (
    "CAST((year(make_timestamp(epoch_us({column}))) - 1970) * 12"
    " + month(make_timestamp(epoch_us({column}))) - 1 AS INTEGER)"
)
"""A moment's month (UTC) as months since January 1970 (read from the moment's UTC wall
clock as a plain timestamp: ``timezone('UTC', …)`` goes through ICU and costs 50 times
more, 0.4 µs a row)."""


def bucket_sql(us: str) -> str:
    """The bucket of a time of ``us`` microseconds (NULL stays NULL)."""
    return (
        f"CASE WHEN ({us}) <= 0 THEN CAST(-1 AS SMALLINT)"
        f" ELSE CAST(floor(ln({us}) / {math.log(GROWTH)!r}) AS SMALLINT) END"
    )


def bucket_value(bucket: int) -> float:
    """A bucket's representative time in microseconds (its geometric middle)."""
    return 0.0 if bucket < 0 else float(GROWTH ** (bucket + 0.5))


COLUMNS: tuple[tuple[str, str], ...] = (
    ("month", "INTEGER"),
    ("funnel", "VARCHAR"),
    ("owner", "VARCHAR"),
    ("everyone", "BOOLEAN"),
    ("department", "VARCHAR"),
    ("part", "VARCHAR"),
    ("stage", "VARCHAR"),
    ("next_stage", "VARCHAR"),
    ("path", "VARCHAR"),
    ("steps", "INTEGER"),
    ("bucket", "SMALLINT"),
    ("n", "BIGINT"),
    ("records", "BIGINT"),
    ("starts", "BIGINT"),
    ("ends", "BIGINT"),
    ("min_at", "TIMESTAMPTZ"),
    ("max_at", "TIMESTAMPTZ"),
)

_LATEST = "greatest(o.last_at, coalesce(o.left_at, o.last_at))"

# The rows of the process visits ``{table} o`` that ``{join}`` and ``{where}`` pick, with
# ``{bucket}``: a visit's wait bucket (NULL while open) — the query passes its own for the
# period's cut months, measured up to the instant asked.
PARTS_SQL = (
    "SELECT {month} AS month, o.funnel, {owner} AS owner, FALSE AS everyone,"
    " CAST(NULL AS VARCHAR) AS department, 'node' AS part, o.stage,"
    " CAST(NULL AS VARCHAR) AS next_stage, CAST(NULL AS VARCHAR) AS path,"
    " CAST(NULL AS INTEGER) AS steps,"
    " {node_bucket} AS bucket, count(*) AS n,"
    " count(*) FILTER (WHERE o.first_in_stage) AS records,"
    " count(*) FILTER (WHERE o.seq = 1) AS starts,"
    " count(*) FILTER (WHERE {left} AND o.next_stage IS NULL) AS ends,"
    " min(o.min_at) AS min_at, max(" + _LATEST + ") AS max_at"
    " FROM {table} o{join} WHERE {where} GROUP BY ALL"
    " UNION ALL SELECT {month}, o.funnel, {owner}, FALSE, NULL, 'edge', o.stage, o.next_stage,"
    " NULL, NULL,"
    " {edge_bucket}, count(*), count(*) FILTER (WHERE o.first_on_edge), 0, 0,"
    " min(o.min_at), max(" + _LATEST + ")"
    " FROM {table} o{join} WHERE {where} AND o.next_stage IS NOT NULL GROUP BY ALL"
    " UNION ALL SELECT {month}, o.funnel, {owner}, FALSE, NULL, 'path', NULL, NULL, o.path,"
    " o.steps,"
    + bucket_sql("epoch_us(o.last_at) - epoch_us(o.min_at)")
    + ", count(*), 0, 0, 0, min(o.min_at), max(o.last_at)"
    " FROM {table} o{join} WHERE {where} AND o.seq = 1 GROUP BY ALL"
)

STORED_NODE_BUCKET = (
    "CASE WHEN o.left_at IS NOT NULL THEN "
    + bucket_sql("epoch_us(o.left_at) - epoch_us(o.entered_at)")
    + " END"
)
EDGE_BUCKET = bucket_sql("epoch_us(o.left_at) - epoch_us(o.entered_at)")


def rows_sql(
    table: str,
    join: str = "",
    where: str = "TRUE",
    month: str = MONTH.format(column="o.first_at"),
    owner: str = "o.owner",
) -> str:
    """The stored months' rows of the process visits ``table`` (``join``/``where``: which;
    ``month``: the row's month, when the table has it already; ``month`` and ``owner``
    constants: every picked row counted together, as a period's cut months are)."""
    return PARTS_SQL.format(
        month=month,
        owner=owner,
        table=table,
        join=join,
        where=where,
        node_bucket=STORED_NODE_BUCKET,
        edge_bucket=EDGE_BUCKET,
        left="o.left_at IS NOT NULL",
    )


# The months' rows of every owner together (``everyone``), summed from the owners' rows
# ``{rows}`` (``{where}``: which).
EVERYONE_SQL = (
    "SELECT month, funnel, NULL, TRUE, NULL, part, stage, next_stage, path, any_value(steps),"
    " bucket, sum(n), sum(records), sum(starts), sum(ends), min(min_at), max(max_at)"
    " FROM {rows} WHERE NOT everyone AND department IS NULL{where}"
    " GROUP BY month, funnel, part, stage, next_stage, path, bucket"
)
# The months' rows of each department's people together (a lead's or deal's owner is its
# responsible manager: their department in the directory as it stands), summed from the
# owners' rows ``{rows}`` (``{where}``: which), so that a department's year reads its own
# rows instead of summing its people's. A project's owner is its department already.
DEPARTMENT_SQL = (
    "SELECT o.month, o.funnel, NULL, FALSE, u.department, o.part, o.stage, o.next_stage,"
    " o.path, any_value(o.steps), o.bucket, sum(o.n), sum(o.records), sum(o.starts),"
    " sum(o.ends), min(o.min_at), max(o.max_at)"
    " FROM {rows} o JOIN users u ON u.username = o.owner"
    " WHERE NOT o.everyone AND o.department IS NULL AND u.department IS NOT NULL{where}"
    " GROUP BY o.month, o.funnel, u.department, o.part, o.stage, o.next_stage, o.path,"
    " o.bucket"
)
DIRECTORY_TOPICS = frozenset({"UserRegistered", "UserChanged"})
"""The directory's events that may move a person to another department."""


def view_sql(table: str) -> str:
    """The months' rows (each owner's, each department's and everyone's) of the process
    visits ``table`` as they read: the scoped viewers' view."""
    kind = next(k for k in KINDS if k.table == table)
    return (
        f"WITH owners AS ({rows_sql(table)}) SELECT * FROM owners UNION ALL "
        + EVERYONE_SQL.format(rows="owners", where="")
        + (
            " UNION ALL " + DEPARTMENT_SQL.format(rows="owners", where="")
            if _by_department(kind)
            else ""
        )
    )


def _by_department(kind: ProcessKind) -> bool:
    """Whether the kind keeps department rows (its owner is a person in the directory)."""
    return kind.kind != "project"


@dataclass(frozen=True)
class MonthKind:
    process: ProcessKind

    @property
    def table(self) -> str:
        return f"{self.process.kind}_process_months"

    @property
    def cases(self) -> str:
        return f"{self.process.kind}_process_month_cases"

    @property
    def open(self) -> str:
        return f"{self.process.kind}_process_open"


MONTH_KINDS: tuple[MonthKind, ...] = tuple(MonthKind(k) for k in KINDS)


def _ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body})"


def _case_columns(kind: MonthKind) -> tuple[tuple[str, str], ...]:
    return (
        (kind.process.key, "VARCHAR"),
        ("month", "INTEGER"),
        ("funnel", "VARCHAR"),
        ("owner", "VARCHAR"),
    )


def _open_columns(kind: MonthKind) -> tuple[tuple[str, str], ...]:
    return (
        (kind.process.key, "VARCHAR"),
        ("funnel", "VARCHAR"),
        ("owner", "VARCHAR"),
        ("first_at", "TIMESTAMPTZ"),
        ("stage", "VARCHAR"),
        ("entered_at", "TIMESTAMPTZ"),
    )


def _open_sql(kind: MonthKind) -> str:
    """The visits still open (``{where}``: which), in the order of their case's first entry
    (a period then skips the row groups outside it)."""
    return (
        f"SELECT o.{kind.process.key}, o.funnel, o.owner, o.first_at, o.stage, o.entered_at"
        f" FROM {kind.process.table} o WHERE o.left_at IS NULL{{where}} ORDER BY o.first_at"
    )


_MONTH_START = "make_timestamptz(1970 + ({month}) // 12, ({month}) % 12 + 1, 1, 0, 0, 0, 'UTC')"

_SAME_KEY = (
    " SEMI JOIN _pm_keys k ON k.month = {month} AND k.funnel IS NOT DISTINCT FROM {t}.funnel"
    " AND k.owner IS NOT DISTINCT FROM {t}.owner"
)


def _statements(kind: MonthKind) -> tuple[str, ...]:
    key, process = kind.process.key, kind.process.table
    case_sql = (
        f"SELECT o.{key}, " + MONTH.format(column="o.first_at") + ", o.funnel, o.owner"
        f" FROM {process} o WHERE o.seq = 1"
    )
    return (
        # the months, funnels and owners the touched cases were and are counted in
        "CREATE OR REPLACE TEMP TABLE _pm_keys AS "
        f"SELECT month, funnel, owner FROM {kind.cases}"
        f" WHERE {key} IN (SELECT unnest($touched)) UNION"
        f" SELECT * EXCLUDE ({key}) FROM ({case_sql}) c"
        f" WHERE c.{key} IN (SELECT unnest($touched))",
        f"DELETE FROM {kind.cases} WHERE {key} IN (SELECT unnest($touched))",
        f"INSERT INTO {kind.cases} SELECT * FROM ({case_sql}) c"
        f" WHERE c.{key} IN (SELECT unnest($touched))",
        f"DELETE FROM {kind.open} WHERE {key} IN (SELECT unnest($touched))",
        f"INSERT INTO {kind.open} "
        + _open_sql(kind).format(where=f" AND o.{key} IN (SELECT unnest($touched))"),
        f"DELETE FROM {kind.table} WHERE EXISTS (SELECT 1 FROM _pm_keys k"
        f" WHERE k.month = {kind.table}.month"
        f" AND k.funnel IS NOT DISTINCT FROM {kind.table}.funnel"
        f" AND k.owner IS NOT DISTINCT FROM {kind.table}.owner) AND NOT everyone"
        " AND department IS NULL",
        # the process rows of the touched months, funnels and owners (a range on the first
        # entry first: the month is computed only for the rows in it)
        "CREATE OR REPLACE TEMP TABLE _pm_rows AS SELECT o.* FROM (SELECT o.*, "
        + MONTH.format(column="o.first_at")
        + f" AS month FROM {process} o WHERE o.first_at >= (SELECT "
        + _MONTH_START.format(month="min(month)")
        + " FROM _pm_keys) AND o.first_at < (SELECT "
        + _MONTH_START.format(month="max(month) + 1")
        + " FROM _pm_keys)) o"
        + _SAME_KEY.format(month="o.month", t="o"),
        f"INSERT INTO {kind.table} " + rows_sql("_pm_rows", month="o.month"),
        "DROP TABLE _pm_rows",
        # everyone's rows of the touched months and funnels, summed again
        f"DELETE FROM {kind.table} WHERE everyone AND EXISTS (SELECT 1 FROM _pm_keys k"
        f" WHERE k.month = {kind.table}.month"
        f" AND k.funnel IS NOT DISTINCT FROM {kind.table}.funnel)",
        f"INSERT INTO {kind.table} "
        + EVERYONE_SQL.format(
            rows=kind.table,
            where=" AND EXISTS (SELECT 1 FROM _pm_keys k WHERE k.month = "
            f"{kind.table}.month AND k.funnel IS NOT DISTINCT FROM {kind.table}.funnel)",
        ),
        # the departments' rows of the touched months and funnels, summed again
        *(
            (
                f"DELETE FROM {kind.table} WHERE department IS NOT NULL AND EXISTS (SELECT 1"
                f" FROM _pm_keys k WHERE k.month = {kind.table}.month"
                f" AND k.funnel IS NOT DISTINCT FROM {kind.table}.funnel)",
                f"INSERT INTO {kind.table} "
                + DEPARTMENT_SQL.format(
                    rows=kind.table,
                    where=" AND EXISTS (SELECT 1 FROM _pm_keys k WHERE k.month = o.month"
                    " AND k.funnel IS NOT DISTINCT FROM o.funnel)",
                ),
            )
            if _by_department(kind.process)
            else ()
        ),
        "DROP TABLE _pm_keys",
    )


class ProcessMonthProjection:
    """The three months tables (register it after the process visits' projection)."""

    name = "process_months"
    tables: tuple[str, ...] = tuple(t for k in MONTH_KINDS for t in (k.table, k.cases, k.open))
    topics: frozenset[str] = frozenset().union(*(k.topics for k in KINDS), DIRECTORY_TOPICS)

    def __init__(self) -> None:
        self._topic_values = {
            k.process.kind: pa.array(sorted(k.process.topics), pa.string()) for k in MONTH_KINDS
        }
        self._directory_topics = pa.array(sorted(DIRECTORY_TOPICS), pa.string())
        self._statements = {k.process.kind: _statements(k) for k in MONTH_KINDS}

    @property
    def fingerprint(self) -> str:
        parts = [self.name, f"{GROWTH!r}"]
        for k in MONTH_KINDS:
            parts += [_ddl(k.table, COLUMNS), _ddl(k.cases, _case_columns(k))]
            parts.append(_ddl(k.open, _open_columns(k)))
            parts += self._statements[k.process.kind]
        parts.append(_SOURCE_DIGEST)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def create_tables(self, cursor: duckdb.DuckDBPyConnection) -> None:
        for k in MONTH_KINDS:
            cursor.execute(_ddl(k.table, COLUMNS))
            cursor.execute(_ddl(k.cases, _case_columns(k)))
            cursor.execute(_ddl(k.open, _open_columns(k)))

    def derive_all(
        self,
        cursor: duckdb.DuckDBPyConnection,
        kinds: tuple[str, ...] = ("lead", "deal", "project"),
    ) -> None:
        """Every row again from the process visits and the directory as they stand,
        set-based, inside the caller's transaction: what a rebuild calls once after its
        last page (after the process visits' ``derive_all``) instead of every page's
        ``apply``, and benches, for read models written without the projector."""
        for k in MONTH_KINDS:
            if k.process.kind not in kinds:
                continue
            key = k.process.key
            cursor.execute(f"DELETE FROM {k.cases}")
            cursor.execute(
                f"INSERT INTO {k.cases} SELECT o.{key}, "
                + MONTH.format(column="o.first_at")
                + f", o.funnel, o.owner FROM {k.process.table} o WHERE o.seq = 1"
            )
            cursor.execute(f"DELETE FROM {k.open}")
            cursor.execute(f"INSERT INTO {k.open} " + _open_sql(k).format(where=""))
            cursor.execute(f"DELETE FROM {k.table}")
            # in the order the map reads them (everyone's, a department's, an owner's rows
            # of a funnel's months), so that DuckDB's min/max per row group skips the rest
            cursor.execute(
                f"INSERT INTO {k.table} SELECT * FROM ({rows_sql(k.process.table)})"
                " ORDER BY funnel, owner, month"
            )
            cursor.execute(
                f"INSERT INTO {k.table} SELECT * FROM"
                f" ({EVERYONE_SQL.format(rows=k.table, where='')}) ORDER BY funnel, month"
            )
        self.derive_departments(cursor, kinds)

    def derive_departments(
        self,
        cursor: duckdb.DuckDBPyConnection,
        kinds: tuple[str, ...] = ("lead", "deal", "project"),
    ) -> None:
        """The departments' rows again from the owners' rows and the directory as it
        stands (after a page that may move a person to another department)."""
        for k in MONTH_KINDS:
            if k.process.kind not in kinds or not _by_department(k.process):
                continue
            cursor.execute(f"DELETE FROM {k.table} WHERE department IS NOT NULL")
            cursor.execute(
                f"INSERT INTO {k.table} SELECT * FROM"
                f" ({DEPARTMENT_SQL.format(rows=k.table, where='')})"
                " ORDER BY department, funnel, month"
            )

    def apply(self, cursor: duckdb.DuckDBPyConnection, page: pa.Table) -> None:
        topic = page["topic"]
        for k in MONTH_KINDS:
            values = self._topic_values[k.process.kind]
            mine = pc.is_in(topic, value_set=values)
            if not pc.any(mine).as_py():
                continue
            # the touched cases, found in the page's Arrow columns: a parameter of the
            # statements that read them (a temporary table of them costs two statements)
            touched = pc.unique(page["stream_id"].filter(mine)).to_pylist()
            # on an error the caller rolls the transaction back, the temp tables included
            for statement in self._statements[k.process.kind]:
                if "$touched" in statement:
                    cursor.execute(statement, {"touched": touched})
                else:
                    cursor.execute(statement)
        if pc.any(pc.is_in(topic, value_set=self._directory_topics)).as_py():
            self.derive_departments(cursor)

"""Sales statistics by delivered projects (issue 16 §1): the projects delivered per month
of a year beside the same months of last year, and a forecast for the rest of the year.

A project is **delivered** when it is in the done status; the month it was delivered is
the month (UTC) it entered that status, and its value is the project's amount.

**The forecast** (``METHOD``): each month after the last whole one is forecast as last
year's delivered amount in that month * the year's ratio to date (delivered this year
in its whole months / delivered last year in the same months). With nothing
delivered last year to date there is no ratio, and last year's months are taken as
they were. The ratio counts whole months only: an as-of month not over yet is forecast
too (as its whole, at least what it has delivered so far). The forecast for the year is
what the whole months delivered plus the forecast months.

**The backtest** runs the same method at every past month end (January to November) of
every year whose year before is whole in the history (it starts in a January): the
forecast of the months from the next one to the last complete month of that year
(before the as-of month) against what was delivered in them; the error is
|forecast - actual| / actual, and the MAPE is its mean over the points whose actual
is not 0.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

from queries.common import CENT, ZERO, percent

METHOD = (
    "forecast(month) = last year's delivered amount in that month * (delivered this year "
    "to date / delivered last year in the same months); no ratio (nothing last year to "
    "date): last year's months as they were"
)

Series = dict[tuple[int, int], tuple[int, Decimal]]
"""(year, month) → (projects delivered, their amount)."""


def delivered_series(
    cursor: duckdb.DuckDBPyConnection,
    done_status: str,
    as_of: datetime,
    funnel: str | None,
    department: str | None,
) -> Series:
    """Every month's delivered projects up to ``as_of`` (in the viewer's scope)."""
    clauses = ["status = ?", "status_entered_at <= ?"]
    params: list[Any] = [done_status, as_of]
    for column, value in (("funnel", funnel), ("department", department)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    cursor.execute(
        "SELECT year(timezone('UTC', status_entered_at)) AS y, "
        "month(timezone('UTC', status_entered_at)) AS m, count(*) AS n, "
        "coalesce(sum(amount), 0) AS amount FROM projects "
        f"WHERE {' AND '.join(clauses)} GROUP BY 1, 2",
        params,
    )
    return {(int(y), int(m)): (int(n), Decimal(a)) for y, m, n, a in cursor.fetchall()}


def _amount(series: Series, year: int, month: int) -> Decimal:
    return series.get((year, month), (0, ZERO))[1]


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def ratio_to_date(series: Series, year: int, through: int) -> Decimal | None:
    """Delivered in ``year`` through month ``through`` / last year's same months."""
    this = sum((_amount(series, year, m) for m in range(1, through + 1)), ZERO)
    last = sum((_amount(series, year - 1, m) for m in range(1, through + 1)), ZERO)
    if through == 0 or last == 0:
        return None
    return (this / last).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def forecast_month(series: Series, year: int, month: int, ratio: Decimal | None) -> Decimal:
    last = _amount(series, year - 1, month)
    return _cents(last if ratio is None else last * ratio)


def backtest(series: Series, as_of: datetime) -> list[dict[str, Any]]:
    """The method run at every past month end against what was delivered after it."""
    if not series:
        return []
    first_year, first_month = min(series)
    first_full = first_year if first_month == 1 else first_year + 1
    points = []
    for year in range(first_full + 1, as_of.year + 1):
        complete = 12 if year < as_of.year else as_of.month - 1
        for made_at in range(1, min(complete, 12)):
            horizon = range(made_at + 1, complete + 1)
            ratio = ratio_to_date(series, year, made_at)
            forecast = sum((forecast_month(series, year, m, ratio) for m in horizon), ZERO)
            actual = sum((_amount(series, year, m) for m in horizon), ZERO)
            error = None if actual == 0 else abs(percent(forecast - actual, actual) or ZERO)
            points.append(
                {
                    "made_at": f"{year}-{made_at:02d}",
                    "horizon": f"{year}-{made_at + 1:02d}..{year}-{complete:02d}",
                    "forecast": forecast,
                    "actual": actual,
                    "error_percent": error,
                }
            )
    return points


def delivered_sales(
    cursor: duckdb.DuckDBPyConnection,
    *,
    done_status: str,
    year: int,
    as_of: datetime,
    funnel: str | None,
    department: str | None,
) -> dict[str, Any]:
    """The year's delivered projects per month beside last year's, the forecast to the
    year's end and the method's backtest over the history."""
    series = delivered_series(cursor, done_status, as_of, funnel, department)
    through = 12 if as_of.year > year else (as_of.month if as_of.year == year else 0)
    month_ended = (as_of + timedelta(microseconds=1)).month != as_of.month
    complete = through if as_of.year != year or month_ended else through - 1
    ratio = ratio_to_date(series, year, complete)
    months: list[dict[str, Any]] = []
    for m in range(1, 13):
        n, amount = series.get((year, m), (0, ZERO))
        last_n, last_amount = series.get((year - 1, m), (0, ZERO))
        months.append(
            {
                "month": m,
                "projects": n,
                "amount": amount,
                "last_year_projects": last_n,
                "last_year_amount": last_amount,
                # the as-of month, not over yet: what it would total, at least its sales
                "forecast_amount": (
                    max(amount, forecast_month(series, year, m, ratio)) if m > complete else None
                ),
                "change_percent": percent(amount - last_amount, last_amount)
                if m <= through
                else None,
            }
        )
    to_date = sum((r["amount"] for r in months), ZERO)
    complete_amount = sum((r["amount"] for r in months if r["month"] <= complete), ZERO)
    forecast = sum((r["forecast_amount"] or ZERO for r in months), ZERO)
    points = backtest(series, as_of)
    errors = [p["error_percent"] for p in points if p["error_percent"] is not None]
    mape = _cents(sum(errors, ZERO) / len(errors)) if errors else None
    return {
        "year": year,
        "as_of": as_of,
        "funnel": funnel,
        "department": department,
        "months": months,
        "to_date_projects": sum(r["projects"] for r in months),
        "to_date_amount": to_date,
        "last_year_to_date_amount": sum(
            (r["last_year_amount"] for r in months if r["month"] <= through), ZERO
        ),
        "ratio": ratio,
        "forecast_year_amount": complete_amount + forecast,
        "last_year_amount": sum((r["last_year_amount"] for r in months), ZERO),
        "method": METHOD,
        "backtest": points,
        "backtest_mape_percent": mape,
    }

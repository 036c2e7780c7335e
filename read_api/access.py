"""Authentication and authorisation, in one place.

- **Who**: every request but the probes carries ``Authorization: Bearer <token>``; a
  missing, malformed, wrongly signed or expired token is a 401.
- **May they call this endpoint**: :data:`ENDPOINTS` names, for every operation, the
  roles allowed to call it (anything not listed is refused: the table fails closed).
  Another role gets a 403 saying which roles may.
- **May they act on this record**: commands carry a guard (:mod:`commands.policy`) the
  handler applies to the aggregate it loaded, chosen here by the operation.
- **What may they read**: a viewer who does not see everything reads the read models
  through a :class:`Scope`: temporary views, on the request's own DuckDB cursor, that
  shadow every table with the rows the viewer may see. Every list, report, export,
  detail and the event feed is computed over those views, so figures are the viewer's
  own; a record outside the scope is simply not there (404, never 403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar
from uuid import UUID

import duckdb
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from aggregates import lead
from aggregates.errors import InvalidValue, NotPermitted
from aggregates.funnels import FunnelCatalog
from aggregates.users import Principal, Role
from commands.context import StreamNotFound
from commands.leads import load_lead_records
from commands.policy import Guard, Policy
from commands.users import StoreDirectory
from leadledger.tokens import TokenRejected
from leadledger.wiring import Platform
from projections.cohorts import COHORT_ROWS_SQL, MONTHS_SQL
from projections.lead_days import DAYS_SQL
from projections.process_months import MONTH_KINDS, view_sql
from read_api.errors import Unauthenticated

M, H, T, PM, E, D = Role.MANAGER, Role.HEAD, Role.TOP, Role.PM, Role.EXPERT, Role.DEPARTMENT
AN, AU, AD = Role.ANALYST, Role.AUDITOR, Role.ADMIN
A = Role.ASSISTANT

EVERYONE = frozenset(Role)
READERS = frozenset({M, H, T, PM, E, D, AN, AU, A})
"""Business data is read by everyone but administrators (they run the platform)."""
SALES = frozenset({M, H, T})
ASSISTED = SALES | {A}
"""Lead commands an assistant issues for their managers (create, fill the card and the
cost breakdown, move, pause, resume); qualifying, closing, converting, transferring and
the sensitive section stay the manager's."""
DEPARTMENTS = frozenset({D, H, T})
PROJECTS = frozenset({PM, H, T})
TIMESHEETS = frozenset({PM, H, T, D, E})
OVERSIGHT = frozenset({T, AU, AD})

PUBLIC = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
    }
)
"""Open without a token: probes and scrapes (positions and counters) and the API's own
description (its OpenAPI document and the pages that render it); no business data."""

ENDPOINTS: dict[tuple[str, str], frozenset[Role]] = {
    # leads
    ("POST", "/leads"): ASSISTED,
    ("GET", "/leads"): READERS,
    ("GET", "/leads/{lead_id}"): READERS,
    ("GET", "/leads/{lead_id}/history"): READERS,
    ("GET", "/leads/{lead_id}/status-time"): READERS,
    **{
        ("POST", f"/leads/{{lead_id}}/{action}"): SALES
        for action in (
            "card",
            "cost",
            "stage",
            "transfer",
            "pause",
            "resume",
            "qualification",
            "close",
            "deal",
        )
    },
    **{
        ("POST", f"/leads/{{lead_id}}/{action}"): ASSISTED
        for action in ("card", "cost", "stage", "pause", "resume")
    },
    ("POST", "/leads/{lead_id}/assessment"): frozenset({E, H, T}),
    ("PUT", "/leads/{lead_id}/sensitive"): SALES,
    ("GET", "/leads/{lead_id}/sensitive"): SALES,
    ("GET", "/leads/{lead_id}/sensitive/reads"): frozenset({T, AU}),
    # catalogues
    ("GET", "/funnels"): EVERYONE,
    ("GET", "/deal-funnels"): EVERYONE,
    ("GET", "/departments"): EVERYONE,
    ("GET", "/project-statuses"): EVERYONE,
    ("GET", "/status-limits"): EVERYONE,
    ("POST", "/status-limits"): frozenset({T, AD}),
    ("GET", "/asyncapi.json"): EVERYONE,
    ("GET", "/me"): EVERYONE,
    # deals and hand-offs
    ("POST", "/deals"): SALES,
    ("GET", "/deals"): READERS,
    ("GET", "/deals/{deal_id}"): READERS,
    ("GET", "/deals/{deal_id}/history"): READERS,
    ("GET", "/deals/{deal_id}/status-time"): READERS,
    **{
        ("POST", f"/deals/{{deal_id}}/{action}"): SALES
        for action in ("stage", "proposal", "contract", "invoice", "close", "requests")
    },
    **{
        ("POST", f"/handoffs/{{request_id}}/{action}"): DEPARTMENTS
        for action in ("take", "estimate", "plan", "calculation", "stage", "reject")
    },
    ("POST", "/handoffs/{request_id}/delivery"): DEPARTMENTS,
    ("POST", "/deals/{deal_id}/invoices/{number}/approval"): SALES,
    ("GET", "/handoffs"): READERS,
    ("GET", "/handoffs/{request_id}"): READERS,
    ("GET", "/handoffs/{request_id}/history"): READERS,
    ("POST", "/contractors"): DEPARTMENTS,
    ("POST", "/contractors/{contractor_id}/card"): DEPARTMENTS,
    ("GET", "/contractors"): READERS,
    ("GET", "/contractors/{contractor_id}"): READERS,
    ("GET", "/contractors/{contractor_id}/history"): READERS,
    ("POST", "/client-assignments"): SALES,
    ("POST", "/client-assignments/{assignment_id}/decision"): frozenset({H, T}),
    ("GET", "/client-assignments"): READERS,
    ("GET", "/client-assignments/{assignment_id}"): READERS,
    ("GET", "/alerts"): READERS,
    ("GET", "/alerts/unread-count"): READERS,
    ("POST", "/alerts/read"): READERS,
    ("POST", "/alerts/{alert_id}/read"): READERS,
    # activities («Мои Дела») and personal weekly plans
    ("GET", "/activity-types"): EVERYONE,
    ("POST", "/activities"): SALES,
    ("GET", "/activities"): READERS,
    ("GET", "/activities/{activity_id}"): READERS,
    ("GET", "/activities/{activity_id}/history"): READERS,
    **{
        ("POST", f"/activities/{{activity_id}}/{action}"): SALES
        for action in ("done", "cancel", "reschedule")
    },
    ("GET", "/activity-plans"): READERS,
    ("GET", "/activity-plans/{manager}/{week}"): READERS,
    ("PUT", "/activity-plans/{manager}/{week}"): SALES,
    ("POST", "/activity-plans/{manager}/{week}/comments"): SALES,
    # projects
    ("POST", "/projects"): PROJECTS,
    ("GET", "/projects"): READERS,
    ("GET", "/projects/{project_id}"): READERS,
    ("GET", "/projects/{project_id}/history"): READERS,
    ("GET", "/projects/{project_id}/status-time"): READERS,
    **{
        ("POST", f"/projects/{{project_id}}/{action}"): PROJECTS
        for action in (
            "card",
            "status",
            "tasks",
            "tasks/{task_id}",
            "tasks/{task_id}/complete",
            "health",
            "health/clear",
            "invoices",
            "invoices/{number}/payments",
            "launch",
            "acts",
        )
    },
    ("POST", "/projects/{project_id}/hours"): TIMESHEETS,
    ("POST", "/projects/{project_id}/hours/{entry_id}/correction"): TIMESHEETS,
    # reports
    **{
        ("GET", f"/reports/{name}"): READERS
        for name in (
            "funnel",
            "deal-pipeline",
            "handoffs",
            "department-load",
            "portfolio",
            "plan-fact",
            "resource-load",
            "deviations",
            "payments",
            "status-time",
            "status-time/summary",
            "paused-leads",
        )
    },
    # delivery (issue 16 §2)
    ("GET", "/reports/project-costs"): READERS,
    ("GET", "/reports/check-growth"): READERS,
    ("GET", "/reports/contractor-overruns"): READERS,
    # sales plans, indicators and cabinets (the plan rule is the aggregate's: a manager
    # may call PUT and hears why not)
    ("PUT", "/sales-plans/{manager}/{month}"): SALES,
    ("GET", "/sales-plans"): READERS,
    ("GET", "/sales-plans/{manager}/{month}/history"): READERS,
    **{
        ("GET", f"/reports/{name}"): READERS
        for name in ("new-leads", "new-clients", "dormant-clients", "invoices", "deals-in-work")
    },
    ("GET", "/cabinets/manager"): SALES,
    ("GET", "/cabinets/sales"): SALES,
    **{
        ("GET", f"/reports/activities/{name}"): READERS
        for name in (
            "weekly",
            "coefficient",
            "calls",
            "clients-without-interaction",
            "clients-without-planned",
        )
    },
    # the sales pack (issue 16 §1)
    **{
        ("GET", f"/reports/{name}"): READERS
        for name in (
            "leads-period",
            "proposals",
            "average-check",
            "conversion-cohorts",
            "delivered-sales",
        )
    },
    ("GET", "/reports/revenue-cap"): frozenset({T, H, AN}),
    # the company directory and the client card (issue 18 §1)
    ("POST", "/companies"): ASSISTED,
    ("GET", "/companies"): READERS,
    ("GET", "/companies/{company_id}"): READERS,
    ("PUT", "/companies/{company_id}"): ASSISTED,
    ("PATCH", "/companies/{company_id}"): ASSISTED,
    ("POST", "/companies/{company_id}/merge"): frozenset({H, T}),
    ("GET", "/companies/{company_id}/history"): READERS,
    ("GET", "/clients/{company_id}"): READERS,
    ("GET", "/reports/deal-volume-by-industry"): READERS,
    ("GET", "/exports/{table}"): READERS,
    ("GET", "/reports/process-map"): READERS,
    # contacts and the shared directories (issue 18 §1): contacts are created and edited by
    # whoever creates leads; directory entries also by project managers (signatories)
    ("POST", "/contacts"): ASSISTED,
    ("PUT", "/contacts/{contact_id}"): ASSISTED,
    ("GET", "/contacts"): READERS,
    ("GET", "/contacts/{contact_id}"): READERS,
    ("GET", "/directories"): READERS,
    ("GET", "/directories/{kind}"): READERS,
    ("GET", "/directories/{kind}/{entry_id}"): READERS,
    ("POST", "/directories/{kind}"): ASSISTED | PROJECTS,
    ("PUT", "/directories/{kind}/{entry_id}"): ASSISTED | PROJECTS,
    ("POST", "/directories/{kind}/{entry_id}/links"): ASSISTED | PROJECTS,
    ("POST", "/directories/{kind}/{entry_id}/unlink"): ASSISTED | PROJECTS,
    ("GET", "/reports/signatories"): READERS,
    ("GET", "/exports/process-log.ocel.json"): frozenset({AN, T, AU}),
    ("GET", "/exports/process-log.xes"): frozenset({AN, T, AU}),
    # the event stream
    ("GET", "/events"): READERS,
    ("GET", "/events/stream"): READERS,
    # audit and administration
    ("GET", "/audit/verify"): OVERSIGHT,
    ("GET", "/users"): OVERSIGHT,
    ("GET", "/users/{username}"): OVERSIGHT,
    ("POST", "/users"): frozenset({AD}),
    ("POST", "/users/{username}"): frozenset({AD}),
    ("POST", "/users/{username}/managers"): frozenset({AD}),
    ("PUT", "/users/{username}/cost-rate"): frozenset({AD, T}),
    ("PUT", "/users/{username}/password"): frozenset({AD}),
    ("PUT", "/me/password"): EVERYONE,
    ("GET", "/subjects/{subject_id}"): OVERSIGHT,
    # importing an existing base (issue 18 §2)
    ("POST", "/imports"): frozenset({AD, T}),
    ("PUT", "/imports/mappings/{name}"): frozenset({AD, T}),
    ("GET", "/imports/mappings/{name}"): frozenset({AD, T}),
    # the records in their import format: over the viewer's scope, as the lists
    ("GET", "/imports/{kind}/export"): READERS,
    ("POST", "/subjects/{subject_id}/erasure"): frozenset({AD}),
}


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def authenticate(request: Request) -> Principal:
    """The request's principal (parsed once per request)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    header = request.headers.get("Authorization")
    if not header:
        raise Unauthenticated("an Authorization: Bearer token is required")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    platform = _platform(request)
    try:
        principal = platform.signer.verify(token.strip(), now=platform.clock())
    except TokenRejected as error:
        raise Unauthenticated(str(error)) from None
    request.state.principal = principal
    return principal


async def current_user(request: Request) -> Principal:
    """``authenticate`` as a dependency run on the event loop (no thread-pool hand-off:
    the app-wide ``authorize`` has parsed the token already)."""
    return authenticate(request)


def operation(request: Request) -> tuple[str, str]:
    route = request.scope.get("route")
    # the request's URL is built only when no route matched (building it costs more
    # than the rest of the check)
    path: str = route.path if route is not None else request.url.path
    return request.method, path


async def authorize(request: Request) -> None:
    """The app-wide dependency: authenticate, then check the endpoint table (and, for a
    scoped viewer's read of one record, that they see it: awaited, holding no thread)."""
    key = operation(request)
    if key in PUBLIC:
        return
    principal = authenticate(request)
    allowed = ENDPOINTS.get(key)
    if allowed is None:
        raise NotPermitted("not_allowed", f"{key[0]} {key[1]} is open to no role")
    if principal.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed))
        raise NotPermitted(
            "role_not_allowed",
            f"{principal.role.with_article} may not call {key[0]} {key[1]} (allowed: {roles})",
        )
    if key[0] == "GET" and not principal.sees_everything:
        for name, (table, what) in RECORD_PARAMS.items():
            raw = request.path_params.get(name)
            if (
                raw is not None
                and _is_uuid(raw)
                and not await sees(
                    _platform(request),
                    principal,
                    table,
                    name,
                    raw,
                    behind=_behind(request),
                    keep=request.state,
                )
            ):
                raise StreamNotFound(f"{what} {raw} not found")


def _behind(request: Request) -> bool:
    """Whether the read asks for a ``min_position`` the read models have not reached."""
    raw = request.query_params.get("min_position", "")
    return raw.isdigit() and int(raw) > _platform(request).projector.position


RECORD_PARAMS = {
    "lead_id": ("leads", "lead"),
    "deal_id": ("deals", "deal"),
    "request_id": ("handoffs", "hand-off request"),
    "project_id": ("projects", "project"),
    "assignment_id": ("client_assignments", "client assignment"),
    "activity_id": ("activities", "activity"),
}
"""Path parameters naming a record a scoped viewer may not see: such a read is a 404,
whether it comes from the read models or from the event store (history, as_of)."""


def _is_uuid(raw: str) -> bool:
    try:
        UUID(raw)
    except ValueError:
        return False
    return True


CurrentUser = Annotated[Principal, Depends(current_user)]


# --- guards for commands -----------------------------------------------------------------

_VERBS = {
    "card": "edit",
    "cost": "price",
    "stage": "move",
    "status": "move",
    "assessment": "assess",
    "qualification": "qualify",
    "deal": "convert",
    "sensitive": "set the sensitive information of",
    "requests": "ask for estimates on",
    "proposal": "record a proposal on",
    "contract": "record a contract on",
    "invoice": "invoice",
    "tasks": "plan",
    "hours": "log hours on",
    "health": "set the health of",
    "invoices": "invoice",
    "delivery": "record the delivery of",
    "calculation": "price the services of",
    "launch": "launch services of",
    "acts": "record acts on",
    "done": "mark done",
}


def _unseen_is_missing(
    guard: Guard,
    platform: Platform,
    principal: Principal,
    param: str,
    record_id: str,
    missing: Callable[[], Exception],
) -> Guard:
    """The guard, answering ``missing()`` (exactly what an unknown id gets) instead of
    its 403 when the principal may not even see the record: a record outside the read
    scope is not there, for commands as for reads, whatever else the request gets wrong.
    The scope is asked only when the guard refuses, so an allowed command costs nothing,
    and without waiting for the projector: an unknown id is answered at once, and so is
    an unseen one, or their latency would tell them apart."""
    table, _ = RECORD_PARAMS[param]

    def check(state: Any) -> None:
        try:
            guard(state)
        except NotPermitted:
            if not visible(platform, principal, table, param, record_id):
                raise missing() from None
            raise

    return check


def _on_record(guard: Guard, request: Request, platform: Platform, principal: Principal) -> Guard:
    """The guard of a command addressed to the record its path names (404 when unseen)."""
    for param, (_, what) in RECORD_PARAMS.items():
        raw = request.path_params.get(param)
        if raw is not None and _is_uuid(raw):
            record_id = str(UUID(raw))
            missing = partial(StreamNotFound, f"{what} {record_id} not found")
            return _unseen_is_missing(guard, platform, principal, param, record_id, missing)
    return guard


def command_guard(request: Request, principal: Principal, body: Any) -> Guard | None:
    """The ownership guard of the command this request carries (None: the endpoint's
    roles are the whole rule). Raises NotPermitted for a new record naming an owner the
    principal may not name. A refused actor who may not see the record hears that it
    does not exist, in the words an unknown id gets."""
    guard = _command_guard(request, principal, body)
    if guard is None or principal.sees_everything:
        return guard
    platform = _platform(request)
    if operation(request) == ("POST", "/deals"):
        previous = body.get("previous_deal_id") if isinstance(body, dict) else None
        if not isinstance(previous, str) or not _is_uuid(previous):
            return guard
        previous_id = str(UUID(previous))
        missing = partial(InvalidValue, "previous_deal_id", f"deal {previous_id} does not exist")
        return _unseen_is_missing(guard, platform, principal, "deal_id", previous_id, missing)
    return _on_record(guard, request, platform, principal)


def _command_guard(request: Request, principal: Principal, body: Any) -> Guard | None:
    _, path = operation(request)
    platform = _platform(request)
    policy = Policy(principal, StoreDirectory(platform.store))
    parts = path.strip("/").split("/")
    verb = _VERBS.get(parts[2] if len(parts) > 2 else "", parts[-1])
    fields = body if isinstance(body, dict) else {}
    if path in ("/leads", "/deals", "/client-assignments"):
        manager = fields.get("manager")
        if isinstance(manager, str):
            policy.may_own(manager, "manager")
        # an upsell is built on the client's earlier deal: one the actor runs
        return policy.deal("build an upsell on") if path == "/deals" else None
    if parts[0] == "leads" and len(parts) > 2:
        manager = fields.get("manager")
        if parts[2] == "card" and principal.role is Role.ASSISTANT and isinstance(manager, str):
            policy.may_own(manager, "manager")  # an assistant hands leads only among theirs
        if parts[2] == "sensitive" and request.method == "GET":
            return policy.lead("read the sensitive information of")
        return policy.lead(verb)
    if parts[0] == "deals" and parts[-1] == "approval":
        return policy.prepayment_approval(platform.rules.may_approve_prepayment)
    if parts[0] == "deals" and len(parts) > 2:
        return policy.deal(verb)
    if parts[0] == "handoffs":
        return policy.handoff(verb)
    if parts[0] == "projects" and len(parts) > 2:
        if parts[2] == "hours":
            person = fields.get("person")
            if isinstance(person, str):
                policy.acts_as(person, "hours")
            return policy.project(verb, members=True)
        return policy.project(verb)
    if path == "/activities":
        owner = fields.get("owner")
        if isinstance(owner, str):
            policy.may_own(owner, "owner")
        return None
    if parts[0] == "activities" and len(parts) > 2:
        return policy.activity(verb)
    if parts[0] == "activity-plans":
        policy.may_own(str(request.path_params.get("manager", "")), "the plan's manager")
        return None
    if parts[0] == "client-assignments" and len(parts) > 2:
        return policy.assignment(platform.rules.may_approve)
    return None


# --- read scope ----------------------------------------------------------------------------


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(_literal(v) for v in sorted(values)) + ")"


@dataclass(frozen=True)
class Scope:
    """What a viewer who does not see everything may read.

    ``people``: the owners whose records the viewer sees (themselves; for a head, also
    every active user of their department in the directory; for an assistant, the
    managers they work for).

    ``lead_directions``: lead funnel → the sales direction (deal funnel) its leads belong
    to. The people's held client directions (``client_assignments``) show that client's
    leads and deals of that direction too, read in the same query as the records, so
    a direction taken or lost is seen at once.
    """

    principal: Principal
    people: frozenset[str]
    lead_directions: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        principal: Principal,
        cursor: duckdb.DuckDBPyConnection,
        lead_directions: tuple[tuple[str, str], ...] = (),
    ) -> Scope:
        people = {principal.user}
        if principal.role is Role.HEAD and principal.department:
            rows = cursor.execute(
                "SELECT username FROM users WHERE department = ? AND active",
                [principal.department],
            ).fetchall()
            people.update(r[0] for r in rows)
        if principal.role is Role.ASSISTANT:
            row = cursor.execute(
                "SELECT managers FROM users WHERE username = ? AND active AND role = ?",
                [principal.user, Role.ASSISTANT.value],
            ).fetchone()
            people.update(row[0] if row and row[0] else ())
        return cls(principal, frozenset(people), lead_directions)

    def owns_lead(self, manager: str | None, expert: str | None, assessor: str | None) -> bool:
        """The ``leads`` view's rule (below) on a lead's own fields: its manager is one of
        the people, or the viewer is its expert or the expert of its assessment. (The
        view's other way in, a held client direction, needs the read models.)"""
        me = self.principal.user
        return manager in self.people or me in (expert, assessor)

    def lead_direction(self) -> str:
        """SQL: a lead's sales direction, the deal funnel its funnel maps to (a lead funnel
        mapped to none is a direction of its own, named by its id)."""
        if not self.lead_directions:
            return "funnel"
        cases = " ".join(
            f"WHEN {_literal(funnel)} THEN {_literal(direction)}"
            for funnel, direction in self.lead_directions
        )
        return f"CASE funnel {cases} ELSE funnel END"

    def view_statements(self, catalog: str) -> list[str]:
        """CREATE TEMP VIEW statements shadowing each read model with the visible rows."""
        p = self.principal
        me = _literal(p.user)
        people = _in(self.people)
        base = f'"{catalog.replace(chr(34), chr(34) * 2)}".main'
        department = (
            _literal(p.department)
            if p.department and p.role in (Role.HEAD, Role.DEPARTMENT, Role.EXPERT)
            else None
        )
        in_department = f"department = {department}" if department else "FALSE"
        held = (
            f"SELECT company_id, direction FROM {base}.client_assignments WHERE manager IN {people}"
        )
        views: list[tuple[str, str]] = [
            (
                "leads",
                f"manager IN {people} OR expert = {me} OR assessment_expert = {me}"
                f" OR (company_id, {self.lead_direction()}) IN ({held})",
            ),
            (
                "handoffs",
                f"{in_department if p.role is not Role.EXPERT else 'FALSE'}"
                f" OR assignee = {me}"
                f" OR deal_id IN (SELECT deal_id FROM {base}.deals WHERE manager IN {people})",
            ),
            (
                "deals",
                f"manager IN {people} OR deal_id IN (SELECT deal_id FROM handoffs)"
                f" OR (company_id, funnel) IN ({held})",
            ),
            ("lead_pauses", "lead_id IN (SELECT lead_id FROM leads)"),
            ("lead_stage_visits", "lead_id IN (SELECT lead_id FROM leads)"),
            ("deal_stage_visits", "deal_id IN (SELECT deal_id FROM deals)"),
            ("lead_process_visits", "lead_id IN (SELECT lead_id FROM leads)"),
            ("deal_process_visits", "deal_id IN (SELECT deal_id FROM deals)"),
            ("lead_process_open", "lead_id IN (SELECT lead_id FROM leads)"),
            ("deal_process_open", "deal_id IN (SELECT deal_id FROM deals)"),
            ("lead_process_month_cases", "lead_id IN (SELECT lead_id FROM leads)"),
            ("deal_process_month_cases", "deal_id IN (SELECT deal_id FROM deals)"),
            (
                "projects",
                f"manager IN {people} OR pm = {me} OR {in_department}"
                f" OR project_id IN (SELECT project_id FROM {base}.project_tasks"
                f" WHERE assignee = {me})"
                f" OR project_id IN (SELECT project_id FROM {base}.time_entries"
                f" WHERE person = {me})",
            ),
            *(
                (table, "project_id IN (SELECT project_id FROM projects)")
                for table in (
                    "project_tasks",
                    "plan_days",
                    "project_labour",
                    "resource_months",
                    "time_entries",
                    "project_invoices",
                    "project_payments",
                    "project_acts",
                    "project_status_pms",
                    "project_status_visits",
                    "project_process_visits",
                    "project_process_open",
                    "project_process_month_cases",
                )
            ),
            (
                "client_assignments",
                f"manager IN {people} OR requested_manager IN {people} OR requested_by = {me}",
            ),
            (
                "contractor_quotes",
                "deal_id IN (SELECT deal_id FROM deals)"
                + (" OR TRUE" if p.role in (Role.DEPARTMENT, Role.HEAD) else ""),
            ),
            # a delivered job is seen with its request: a manager their deals' jobs, the
            # logistics department its own
            ("contractor_deliveries", "request_id IN (SELECT request_id FROM handoffs)"),
            (
                "alerts",
                "subject_id IN (SELECT lead_id FROM leads UNION ALL SELECT deal_id FROM deals"
                " UNION ALL SELECT request_id FROM handoffs"
                " UNION ALL SELECT project_id FROM projects"
                f" UNION ALL SELECT activity_id FROM {base}.activities WHERE owner IN {people})"
                f" OR recipient = {me}",
            ),
            # an alert's read mark is seen with the alert
            ("alert_reads", f"alert_id IN (SELECT alert_id FROM alerts) OR reader = {me}"),
            ("alert_counts", f"recipient IN {people}"),
            ("sensitive_reads", "lead_id IN (SELECT lead_id FROM leads)"),
            ("sales_plans", f"manager IN {people}"),
            ("sales_plan_changes", f"manager IN {people}"),
            ("deal_invoices", "deal_id IN (SELECT deal_id FROM deals)"),
            ("client_first_leads", "lead_id IN (SELECT lead_id FROM leads)"),
            ("activities", f"owner IN {people}"),
            ("activities_open", f"owner IN {people}"),
            ("activity_clients", f"owner IN {people}"),
            ("activity_plans", f"manager IN {people}"),
            ("activity_plan_days", f"manager IN {people}"),
            # a contact is seen with a lead naming it, as a client of a held direction, or
            # by the people who added it
            (
                "contacts",
                "contact_id IN (SELECT contact_id FROM leads)"
                f" OR created_by IN {people}"
                f" OR list_has_any(companies, (SELECT list(company_id) FROM ({held})))",
            ),
        ]
        # a company is seen with the records naming it (in the views above), the client
        # directions the people hold, and when one of them registered it; a survivor
        # with its merged duplicates, and those with it
        clients = (
            "SELECT company_id FROM leads UNION ALL SELECT company_id FROM deals"
            " UNION ALL SELECT company_id FROM projects UNION ALL SELECT company_id"
            f" FROM activities UNION ALL SELECT company_id FROM ({held})"
        )
        views.append(
            (
                "companies",
                f"created_by IN {people} OR company_id IN ({clients})"
                f" OR merged_into IN ({clients}) OR company_id IN (SELECT merged_into"
                f" FROM {base}.companies WHERE company_id IN ({clients}))",
            )
        )
        statements = [
            f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {base}.{table} WHERE {predicate}"
            for table, predicate in views
        ]
        # the conversion cohorts over the leads, deals and projects the viewer sees,
        # computed when read (the stored ones count every record)
        statements.append(
            "CREATE OR REPLACE TEMP VIEW lead_cohorts AS " + COHORT_ROWS_SQL.format(where="")
        )
        statements.append(
            "CREATE OR REPLACE TEMP VIEW cohort_months AS "
            + MONTHS_SQL.format(rows="lead_cohorts", where="")
        )
        # the process map's months over the process visits the viewer sees, computed when
        # read (the stored ones count every record)
        statements += [
            f"CREATE OR REPLACE TEMP VIEW {k.table} AS " + view_sql(k.process.table)
            for k in MONTH_KINDS
        ]
        # the leads of each day over the leads the viewer sees, computed when read
        statements.append("CREATE OR REPLACE TEMP VIEW lead_days AS " + DAYS_SQL.format(where=""))
        # the directory is shared, but a contractor's figures are the viewer's: counted
        # over the quotes they see (list, card and export alike)
        statements.append(
            "CREATE OR REPLACE TEMP VIEW contractors AS SELECT c.* REPLACE ("
            "coalesce(q.quotes, 0)::INTEGER AS quotes,"
            " coalesce(q.rating_total, 0)::BIGINT AS rating_total,"
            " round(q.rating_total::DECIMAL(18, 2) / q.quotes, 2)::DECIMAL(4, 2)"
            " AS average_rating,"
            " q.last_used_at AS last_used_at)"
            f" FROM {base}.contractors AS c LEFT JOIN (SELECT contractor_id,"
            " count(*) AS quotes, sum(rating) AS rating_total, max(quoted_at) AS last_used_at"
            " FROM contractor_quotes GROUP BY contractor_id) AS q USING (contractor_id)"
        )
        return statements

    def apply(self, cursor: duckdb.DuckDBPyConnection) -> None:
        row = cursor.execute("SELECT current_database()").fetchone()
        assert row is not None
        cursor.execute(";\n".join(self.view_statements(row[0])))


def scope_of(platform: Platform, principal: Principal) -> Scope:
    """The principal's scope now (a head's people and an assistant's managers are read
    from the directory)."""
    directions = lead_directions(platform.funnels)
    if principal.role is Role.ASSISTANT or (principal.role is Role.HEAD and principal.department):
        cursor = platform.db.cursor()
        try:
            return Scope.of(principal, cursor, directions)
        finally:
            cursor.close()
    return Scope(principal, frozenset({principal.user}), directions)


def lead_directions(funnels: FunnelCatalog) -> tuple[tuple[str, str], ...]:
    """Lead funnel → the deal funnel (sales direction) it converts into, where it has one."""
    return tuple(
        sorted(
            (funnel.id, str(funnel.options["deal_funnel"]))
            for funnel in funnels.values()
            if funnel.options.get("deal_funnel")
        )
    )


@dataclass(frozen=True)
class StreamLead:
    """A lead folded from its stream, and the position of the stream's last event."""

    state: lead.Lead
    position: int


STREAM_LEAD = "stream_lead"
"""The request's state attribute holding the ``StreamLead`` that ``authorize`` folded for
a lead read behind ``min_position``: the route answers from it, with no second read."""


def own_lead_at(platform: Platform, principal: Principal, lead_id: UUID | str) -> StreamLead | None:
    """The lead folded from its stream in the event store when the viewer sees it by its
    own fields there (``Scope.owns_lead``: what the ``leads`` view says of it once the
    read models include its stream's last event), with its last event's position; None
    for no lead or one they do not see so (a client direction they hold is judged by the
    read models)."""
    stream = UUID(lead_id) if isinstance(lead_id, str) else lead_id
    records = load_lead_records(platform.store, stream)
    state = lead.fold([r.event for r in records])
    if state is None:
        return None
    if not principal.sees_everything:
        assessor = state.assessment.expert if state.assessment is not None else None
        if not scope_of(platform, principal).owns_lead(state.manager, state.expert, assessor):
            return None
    return StreamLead(state, records[-1].position)


def own_lead(platform: Platform, principal: Principal, lead_id: UUID | str) -> lead.Lead | None:
    """``own_lead_at``'s lead alone."""
    found = own_lead_at(platform, principal, lead_id)
    return None if found is None else found.state


@contextmanager
def read_models(platform: Platform, principal: Principal) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB cursor on the read models as the principal may see them.

    A scoped cursor's views are built once and the cursor kept for the next request of
    the same scope (building them costs more than most queries).
    """
    if principal.sees_everything:
        cursor = platform.db.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        return
    scope = scope_of(platform, principal)
    with platform.db.leased(scope, scope.apply) as cursor:
        yield cursor


VISIBLE_IDS = (
    "SELECT lead_id AS id FROM leads UNION ALL SELECT deal_id FROM deals"
    " UNION ALL SELECT request_id FROM handoffs UNION ALL SELECT project_id FROM projects"
    " UNION ALL SELECT assignment_id FROM client_assignments"
    " UNION ALL SELECT contractor_id FROM contractors"
    " UNION ALL SELECT activity_id FROM activities UNION ALL SELECT plan_id FROM activity_plans"
    " UNION ALL SELECT contact_id FROM contacts UNION ALL SELECT entry_id FROM directory_entries"
    " UNION ALL SELECT stream_id FROM companies"
)
"""The streams a scoped viewer may follow in the event feed (in the scoped views)."""


def visible_streams(cursor: duckdb.DuckDBPyConnection, stream_ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(stream_ids))
    if not wanted:
        return set()
    rows = cursor.execute(
        f"SELECT DISTINCT id FROM ({VISIBLE_IDS}) WHERE id IN (SELECT unnest(?))", [wanted]
    ).fetchall()
    return {r[0] for r in rows}


def visible(
    platform: Platform, principal: Principal, table: str, column: str, record_id: str
) -> bool:
    """Whether a scoped viewer's read models hold one record now (no waiting)."""
    if principal.sees_everything:
        return True
    query = f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1"
    with read_models(platform, principal) as cursor:
        return cursor.execute(query, [record_id]).fetchone() is not None


async def sees(
    platform: Platform,
    principal: Principal,
    table: str,
    column: str,
    record_id: str,
    *,
    behind: bool = False,
    keep: Any = None,
) -> bool:
    """Whether a scoped viewer sees one record (for reads that come from the event store).

    A lead read ``behind`` (a ``min_position`` the read models have not reached, which
    the lead's route answers from its stream) is theirs by its own stream's fields
    (``own_lead_at``): no read model needed; the lead found is kept on ``keep`` (the
    request's state, as ``STREAM_LEAD``) for the route to answer from without reading the
    stream again. Any other read waits for the read models below, as the read that
    follows comes from them.

    A record the read models have not caught up with yet is looked up again once they
    have (bounded by the read wait), so a manager sees their new lead's history at once.
    The wait is awaited: it holds no worker thread, however many requests wait."""
    if principal.sees_everything:
        return True
    # the position first: a commit between it and the lookup then reads as "behind"
    projected = platform.projector.position
    lookup = (platform, principal, table, column, record_id)
    if table == "leads" and behind:
        found = await run_in_threadpool(own_lead_at, platform, principal, record_id)
        if found is not None:
            if keep is not None:
                setattr(keep, STREAM_LEAD, found)
            return True
    if await run_in_threadpool(visible, *lookup):
        return True
    head = await run_in_threadpool(platform.store.last_position)
    if projected >= head:
        return False
    if not await platform.projector.reached(head, platform.settings.read_wait_seconds):
        return False
    return await run_in_threadpool(visible, *lookup)


Row = TypeVar("Row", bound=tuple[Any, ...])
"""A row of the log that starts with (position, stream id, ...)."""


def feed_rows(
    platform: Platform, principal: Principal, rows: Sequence[Row]
) -> tuple[list[Row], int]:
    """The rows of a feed page the principal may see, and the position the page covers.

    A scoped viewer's page stops at the read models' position (what they may see is
    read there), so an event is never skipped because its record was not projected yet.
    """
    if principal.sees_everything or not rows:
        return list(rows), rows[-1][0] if rows else 0
    projected = platform.projector.position
    covered = [r for r in rows if r[0] <= projected]
    if not covered:
        return [], 0
    with read_models(platform, principal) as cursor:
        visible = visible_streams(cursor, (r[1] for r in covered))
    return [r for r in covered if r[1] in visible], covered[-1][0]

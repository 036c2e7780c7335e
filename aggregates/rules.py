"""Configuration the deal, hand-off and limit deciders read: deal funnels, departments,
organisations, escalation and caps. Built once from funnels.toml and rules.toml."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from aggregates.errors import InvalidValue, RuleViolation
from aggregates.funnels import Funnel, FunnelCatalog

OUTCOMES = ("logistics", "engineering", "calculation")
TAX_REGIMES = ("general", "simplified")


@dataclass(frozen=True)
class Department:
    """A department receiving hand-off requests, with its own funnel."""

    id: str
    name: str
    funnel: Funnel
    outcome: str
    """What the department records: 'logistics' (contractor, cost, lead time),
    'engineering' (a plan: hours, notes) or 'calculation' (priced services)."""
    head: str
    take_within_hours: float | None
    taken_stage: str
    ready_stages: frozenset[str]
    rejected_stage: str

    @property
    def first_stage(self) -> str:
        return self.funnel.first_stage.id

    def is_ready(self, stage: str) -> bool:
        return stage in self.ready_stages

    @property
    def final_stages(self) -> frozenset[str]:
        """Stages after which the request takes no more work."""
        last = self.funnel.stages[-1].id
        finals = {self.rejected_stage}
        done = [s.id for s in self.funnel.stages if s.id in self.ready_stages]
        if done:
            finals.add(done[-1])
        if last != self.rejected_stage:
            finals.add(last)
        return frozenset(finals)


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    tax_regime: str
    yearly_revenue_cap: Decimal | None
    services: frozenset[str] | None = None
    """The services it may sell (proposals and invoices); None: any."""

    def allows(self, service: str) -> bool:
        return self.services is None or service in self.services

    def require_sells(self, services: Iterable[str]) -> None:
        """Refuse a service outside the organisation's list (409 naming both)."""
        for service in services:
            if not self.allows(service):
                allowed = ", ".join(sorted(self.services or ()))
                raise RuleViolation(
                    "organisation_service_not_allowed",
                    f"{self.name} ({self.id}) does not sell '{service}' (it sells: {allowed})",
                    service=service,
                    organisation=self.id,
                )


@dataclass(frozen=True)
class ProjectStatus:
    id: str
    name: str
    time_limit_hours: float | None
    stops_clock: bool = False
    """On hold: time in it is no status's time and counts against no limit."""


@dataclass(frozen=True)
class HealthRules:
    """Thresholds of the computed portfolio health; each rule that holds gives its level."""

    overdue_tasks_some: int = 1
    overdue_tasks_big: int = 3
    status_over_limit: str = "some_difficulties"
    hours_over_plan_percent_some: float = 10.0
    hours_over_plan_percent_big: float = 30.0
    overdue_unpaid_invoice: str = "big_difficulties"


HEALTH_LEVELS = ("good", "some_difficulties", "big_difficulties")


@dataclass(frozen=True)
class Calendar:
    """The production calendar: the hours each working day asks for."""

    hours_per_day: float = 8.0
    working_weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    holidays: frozenset[date] = frozenset()
    departments: frozenset[str] = frozenset()
    """The delivering departments whose people should log hours (configured; else the
    departments projects belong to, ``[projects] departments``)."""
    roles: frozenset[str] = frozenset({"department", "expert"})
    """The roles of those people that log their own hours."""

    def working_hours(self, day: date) -> float:
        if day.isoweekday() not in self.working_weekdays or day in self.holidays:
            return 0.0
        return self.hours_per_day


@dataclass(frozen=True)
class SalesRules:
    """The sales indicators' thresholds (``[sales]`` in rules.toml)."""

    dormant_after_days: int = 730
    """A client with no invoice for more than this many days is dormant (seed 003: two
    years)."""
    currency: str = "RUB"
    """The currency of sales plans when a plan names none."""

    @classmethod
    def from_config(cls, sales: Mapping[str, Any]) -> SalesRules:
        days = sales.get("dormant_after_days", 730)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36600:
            raise ValueError("sales.dormant_after_days must be a whole number of days, 1 to 36600")
        return cls(dormant_after_days=days, currency=str(sales.get("currency", "RUB")))


@dataclass(frozen=True)
class ProjectRules:
    statuses: tuple[ProjectStatus, ...]
    first_status: str
    done_status: str
    mandatory_fields: tuple[str, ...]
    departments: Mapping[str, str]
    health: HealthRules
    calendar: Calendar

    def status(self, status_id: str) -> ProjectStatus | None:
        return next((s for s in self.statuses if s.id == status_id), None)

    def require_status(self, status_id: str, field: str = "status") -> ProjectStatus:
        status = self.status(status_id)
        if status is None:
            known = ", ".join(s.id for s in self.statuses)
            raise InvalidValue(field, f"unknown status '{status_id}' (statuses: {known})")
        return status

    def department_for(self, deal_funnel: str) -> str:
        return self.departments.get(deal_funnel) or self.departments.get("default") or "production"

    @classmethod
    def from_config(cls, projects: Mapping[str, Any], calendar: Mapping[str, Any]) -> ProjectRules:
        statuses = tuple(
            ProjectStatus(
                id=str(s["id"]),
                name=str(s.get("name", s["id"])),
                time_limit_hours=(
                    None if s.get("time_limit_hours") is None else float(s["time_limit_hours"])
                ),
                stops_clock=bool(s.get("stops_clock", False)),
            )
            for s in projects.get("statuses", [])
        )
        ids = [s.id for s in statuses]
        if not statuses or len(set(ids)) != len(ids):
            raise ValueError("[projects] needs statuses with unique ids")
        first = str(projects.get("first_status", ids[0]))
        done = str(projects.get("done_status", "done"))
        for name, value in (("first_status", first), ("done_status", done)):
            if value not in ids:
                raise ValueError(f"[projects] {name} '{value}' is not one of the statuses")
        health = projects.get("health", {})
        for key in ("status_over_limit", "overdue_unpaid_invoice"):
            if key in health and health[key] not in HEALTH_LEVELS:
                raise ValueError(f"[projects.health] {key} must be one of {HEALTH_LEVELS}")
        return cls(
            statuses=statuses,
            first_status=first,
            done_status=done,
            mandatory_fields=tuple(projects.get("mandatory_fields", [])),
            departments={str(k): str(v) for k, v in projects.get("departments", {}).items()},
            health=HealthRules(**health),
            calendar=Calendar(
                hours_per_day=float(calendar.get("hours_per_day", 8)),
                working_weekdays=frozenset(calendar.get("working_weekdays", [1, 2, 3, 4, 5])),
                holidays=frozenset(date.fromisoformat(d) for d in calendar.get("holidays", [])),
                departments=frozenset(
                    map(
                        str,
                        calendar.get("departments") or projects.get("departments", {}).values(),
                    )
                ),
                roles=frozenset(map(str, calendar.get("roles", ["department", "expert"]))),
            ),
        )


ACTIVITY_GROUPS = ("calls", "meetings", "demos", "emails")
ACTIVITY_DIRECTIONS = ("in", "out")


@dataclass(frozen=True)
class ActivityType:
    """A kind of manager activity (seed 004 «Мои Дела»): an outgoing cold call, a meeting
    with an active client, a demonstration, an incoming e-mail..."""

    code: str
    name: str
    group: str
    """calls, meetings, demos or emails: the weekly table's column groups."""
    direction: str | None
    """in, out, or None (meetings, demonstrations)."""
    weight: float
    """Its weight in the activity coefficient."""

    @property
    def after_the_fact(self) -> bool:
        """Incoming calls and e-mails are registered once they happened: done at once."""
        return self.direction == "in"


@dataclass(frozen=True)
class ActivityRules:
    types: tuple[ActivityType, ...]
    coefficient_cap: float = 1.2
    """The activity coefficient never shows more than this (see README)."""
    no_interaction_days: int = 30
    """A client with no done activity for this many days is a client without interaction."""

    def type(self, code: str) -> ActivityType | None:
        return next((t for t in self.types if t.code == code), None)

    def require_type(self, code: str, field: str = "type") -> ActivityType:
        found = self.type(code)
        if found is None:
            known = ", ".join(t.code for t in self.types)
            raise InvalidValue(field, f"unknown activity type '{code}' (known: {known})")
        return found

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups in use, in the configured order of their first type."""
        return tuple(dict.fromkeys(t.group for t in self.types))

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> ActivityRules:
        types = []
        for entry in raw.get("types", []):
            code = str(entry.get("code", "")).strip()
            if not code:
                raise ValueError("[[activities.types]] needs a code")
            group = entry.get("group")
            if group not in ACTIVITY_GROUPS:
                raise ValueError(f"activity type '{code}': group must be one of {ACTIVITY_GROUPS}")
            direction = entry.get("direction")
            if direction is not None and direction not in ACTIVITY_DIRECTIONS:
                raise ValueError(
                    f"activity type '{code}': direction must be one of {ACTIVITY_DIRECTIONS}"
                )
            weight = float(entry.get("weight", 1))
            if not weight >= 0 or weight > 1000:
                raise ValueError(f"activity type '{code}': weight must be between 0 and 1000")
            types.append(ActivityType(code, str(entry.get("name", code)), group, direction, weight))
        codes = [t.code for t in types]
        if not types or len(set(codes)) != len(codes):
            raise ValueError("[activities] needs types with unique codes")
        cap = float(raw.get("coefficient_cap", 1.2))
        if not 1.0 <= cap <= 10.0:
            raise ValueError("activities.coefficient_cap must be between 1.0 and 10.0")
        days = raw.get("no_interaction_days", 30)
        if not isinstance(days, int) or days < 1:
            raise ValueError("activities.no_interaction_days must be an integer ≥ 1")
        return cls(tuple(types), cap, days)


DEFAULT_ACTIVITY_RULES = ActivityRules(
    types=(
        ActivityType("call_out_cold", "Outgoing call: cold", "calls", "out", 1.0),
        ActivityType(
            "call_out_potential", "Outgoing call: potentially active", "calls", "out", 1.0
        ),
        ActivityType("call_out_deal", "Outgoing call: on a current deal", "calls", "out", 1.0),
        ActivityType("call_in_new", "Incoming call: new client", "calls", "in", 0.5),
        ActivityType("call_in_known", "Incoming call: known client", "calls", "in", 0.5),
        ActivityType("meeting_cold", "Meeting: cold", "meetings", None, 3.0),
        ActivityType("meeting_potential", "Meeting: potentially active", "meetings", None, 3.0),
        ActivityType("meeting_active", "Meeting: active client", "meetings", None, 3.0),
        ActivityType("demo", "Demonstration", "demos", None, 4.0),
        ActivityType("email_in", "Incoming e-mail", "emails", "in", 0.25),
        ActivityType("email_out", "Outgoing e-mail", "emails", "out", 0.5),
    )
)
"""Seed 004's activity types, used when rules.toml has no [activities] section."""


@dataclass(frozen=True)
class Rules:
    deal_funnels: FunnelCatalog
    departments: Mapping[str, Department]
    organisations: Mapping[str, Organisation]
    grace_hours: float = 24.0
    default_head: str = "head.of.sales"
    heads: Mapping[str, str] | None = None
    monthly_new_client_cap: int = 5
    approvers: frozenset[str] = frozenset()
    projects: ProjectRules | None = None
    prepayment_approvers: frozenset[str] = frozenset()
    """Who may approve or decline a prepayment invoice, besides the manager's own head."""
    sales: SalesRules = SalesRules()

    @property
    def calendar(self) -> Calendar:
        """The production calendar (``[calendar]``): working days for plans to date."""
        if self.projects is not None:
            return self.projects.calendar
        return Calendar()

    activities: ActivityRules = field(default_factory=lambda: DEFAULT_ACTIVITY_RULES)
    """The managers' activity types, their weights and the indicators' settings."""

    @property
    def project(self) -> ProjectRules:
        if self.projects is None:
            raise ValueError("the rules configuration has no [projects] section")
        return self.projects

    def head_of(self, manager: str) -> str:
        return (self.heads or {}).get(manager, self.default_head)

    def may_approve(self, approver: str, manager: str) -> bool:
        return approver == self.head_of(manager) or approver in self.approvers

    def may_approve_prepayment(self, approver: str, manager: str) -> bool:
        return approver == self.head_of(manager) or approver in self.prepayment_approvers

    def require_department(self, department_id: str, field: str = "department") -> Department:
        department = self.departments.get(department_id)
        if department is None:
            known = ", ".join(sorted(self.departments))
            raise InvalidValue(field, f"unknown department '{department_id}' (known: {known})")
        return department

    def require_organisation(
        self, organisation_id: str, field: str = "organisation"
    ) -> Organisation:
        organisation = self.organisations.get(organisation_id)
        if organisation is None:
            known = ", ".join(sorted(self.organisations))
            raise InvalidValue(field, f"unknown organisation '{organisation_id}' (known: {known})")
        return organisation

    @classmethod
    def from_config(cls, funnels: Mapping[str, Any], rules: Mapping[str, Any]) -> Rules:
        deal_funnels = FunnelCatalog.from_config(funnels, "deal_funnels")
        departments = _departments(FunnelCatalog.from_config(funnels, "departments"))
        for funnel in deal_funnels.values():
            for stage in funnel.stages:
                for needed in stage.needs:
                    if needed not in departments:
                        raise ValueError(
                            f"deal funnel '{funnel.id}' stage '{stage.id}' needs unknown "
                            f"department '{needed}'"
                        )
        escalation = rules.get("escalation", {})
        assignments = rules.get("client_assignments", {})
        cap = assignments.get("monthly_new_client_cap", 5)
        if not isinstance(cap, int) or cap < 0:
            raise ValueError("client_assignments.monthly_new_client_cap must be an integer ≥ 0")
        grace = float(escalation.get("grace_hours", 24))
        if grace <= 0:
            raise ValueError("escalation.grace_hours must be greater than 0")
        return cls(
            deal_funnels=deal_funnels,
            departments=departments,
            organisations=_organisations(rules.get("organisations", {})),
            grace_hours=grace,
            default_head=str(escalation.get("default_head", "head.of.sales")),
            heads={str(k): str(v) for k, v in escalation.get("heads", {}).items()},
            monthly_new_client_cap=cap,
            approvers=frozenset(str(a) for a in assignments.get("approvers", [])),
            prepayment_approvers=_prepayment_approvers(rules.get("prepayment_invoices", {})),
            projects=(
                ProjectRules.from_config(rules["projects"], rules.get("calendar", {}))
                if "projects" in rules
                else None
            ),
            sales=SalesRules.from_config(rules.get("sales", {})),
            activities=(
                ActivityRules.from_config(rules["activities"])
                if "activities" in rules
                else DEFAULT_ACTIVITY_RULES
            ),
        )


def _departments(catalog: FunnelCatalog) -> dict[str, Department]:
    departments = {}
    for funnel in catalog.values():
        options = funnel.options
        ids = [s.id for s in funnel.stages]
        outcome = options.get("outcome")
        if outcome not in OUTCOMES:
            raise ValueError(f"department '{funnel.id}': outcome must be one of {OUTCOMES}")
        taken = options.get("taken_stage", ids[1] if len(ids) > 1 else ids[0])
        ready = options.get("ready_stages", [])
        rejected = options.get("rejected_stage", "rejected")
        for stage in [taken, *ready, rejected]:
            if stage not in ids:
                raise ValueError(f"department '{funnel.id}': '{stage}' is not one of its stages")
        if not ready:
            raise ValueError(f"department '{funnel.id}' needs ready_stages")
        limit = options.get("take_within_hours")
        departments[funnel.id] = Department(
            id=funnel.id,
            name=funnel.name,
            funnel=funnel,
            outcome=outcome,
            head=str(options.get("head", f"{funnel.id}.head")),
            take_within_hours=None if limit is None else float(limit),
            taken_stage=taken,
            ready_stages=frozenset(ready),
            rejected_stage=rejected,
        )
    return departments


def _organisations(raw: Mapping[str, Any]) -> dict[str, Organisation]:
    organisations = {}
    for org_id, body in raw.items():
        regime = body.get("tax_regime", "general")
        if regime not in TAX_REGIMES:
            raise ValueError(f"organisation '{org_id}': tax_regime must be one of {TAX_REGIMES}")
        cap = body.get("yearly_revenue_cap")
        try:
            # quantized to cents: 2.658e8 in the file is stored as 265800000.00
            parsed = None if cap is None else Decimal(str(cap)).quantize(Decimal("0.01"))
        except InvalidOperation as exc:
            raise ValueError(f"organisation '{org_id}': yearly_revenue_cap is no number") from exc
        if regime == "simplified" and (parsed is None or parsed <= 0):
            raise ValueError(
                f"organisation '{org_id}' is on the simplified-tax regime: it needs a "
                "yearly_revenue_cap greater than 0"
            )
        organisations[org_id] = Organisation(
            id=org_id,
            name=str(body.get("name", org_id)),
            tax_regime=regime,
            yearly_revenue_cap=parsed,
            services=_services(org_id, body.get("services")),
        )
    if not organisations:
        raise ValueError("the rules configuration needs at least one [organisations.<id>]")
    return organisations


def _services(org_id: str, raw: Any) -> frozenset[str] | None:
    """An organisation's allowed services (absent: any)."""
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise ValueError(f"organisation '{org_id}': services must be a list of service names")
    return frozenset(s.strip() for s in raw)


def _prepayment_approvers(raw: Mapping[str, Any]) -> frozenset[str]:
    approvers = raw.get("approvers", [])
    if not isinstance(approvers, list):
        raise ValueError("prepayment_invoices.approvers must be a list of user names")
    return frozenset(str(a) for a in approvers)

"""Who may act on which record: the ownership half of command authorisation.

Which roles may issue a command at all is the endpoint table in ``read_api.access``;
this module decides, once the handler has loaded the aggregate, whether this user may
act on this record: a manager on their own leads and deals, a head on their
department's, top management on all; department workers on their department's
hand-off requests; an assistant on the leads of the managers they work for; PMs on the
projects they run (a project with no PM yet belongs to
the head of its department and top management until one is named); approvers on the
client assignments they decide. A refusal is a 403 saying why; the guard built in
``read_api.access.command_guard`` answers "not found" instead when the actor may not
even see the record, so a record outside their scope reads exactly as a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aggregates import activities, deal, handoff, lead, limits, project
from aggregates.errors import NotPermitted
from aggregates.users import Principal, Role

Guard = Callable[[Any], None]


class Directory(Protocol):
    def department_of(self, user: str) -> str | None:
        """The department the user belongs to (None for no department or no user)."""
        ...

    def managers_of(self, assistant: str) -> frozenset[str]:
        """The managers an active assistant works for (empty for anyone else)."""
        ...


class Policy:
    """Ownership rules for one authenticated user."""

    def __init__(self, principal: Principal, directory: Directory) -> None:
        self.principal = principal
        self.directory = directory

    # --- the relations --------------------------------------------------------------

    def heads(self, person: str | None) -> bool:
        """Whether the principal is a head of ``person``'s department (or is them)."""
        p = self.principal
        if person is None or p.role is not Role.HEAD:
            return False
        return person == p.user or (
            p.department is not None and self.directory.department_of(person) == p.department
        )

    def runs(self, owner: str | None) -> bool:
        """The owner themselves, their head, or top management."""
        p = self.principal
        return p.role is Role.TOP or (owner is not None and owner == p.user) or self.heads(owner)

    def assists(self, owner: str | None) -> bool:
        """Whether the principal is an assistant of ``owner`` (a manager)."""
        p = self.principal
        return (
            owner is not None
            and p.role is Role.ASSISTANT
            and owner in self.directory.managers_of(p.user)
        )

    # --- guards for the handlers --------------------------------------------------------

    def lead(self, action: str) -> Guard:
        def check(state: lead.Lead) -> None:
            if self.runs(state.manager) or self.assists(state.manager):
                return
            p = self.principal
            if action == "assess" and p.role is Role.EXPERT and state.expert in (None, p.user):
                return
            raise NotPermitted(
                "not_your_lead",
                f"only the lead's manager, their head, their assistant or top management may "
                f"{action} this lead"
                + (" (or the expert assigned to it)" if action == "assess" else ""),
            )

        return check

    def deal(self, action: str) -> Guard:
        def check(state: deal.Deal) -> None:
            if not self.runs(state.manager):
                raise NotPermitted(
                    "not_your_deal",
                    f"only the deal's manager, their head or top management may {action} this deal",
                )

        return check

    def handoff(self, action: str) -> Guard:
        def check(state: handoff.HandoffRequest) -> None:
            p = self.principal
            if p.role is Role.TOP:
                return
            if p.role in (Role.DEPARTMENT, Role.HEAD) and p.department == state.department:
                return
            raise NotPermitted(
                "not_your_department",
                f"only the {state.department} department, its head or top management may "
                f"{action} this request",
            )

        return check

    def project(self, action: str, *, members: bool = False) -> Guard:
        """``members``: department workers and experts of the project's department may
        act too (they log their own hours). A PM acts only on the projects they run: a
        project with no PM yet is its department head's and top management's until one
        is named (a PM could not even read it)."""

        def check(state: project.Project) -> None:
            p = self.principal
            if p.role is Role.TOP or (p.role is Role.PM and state.pm == p.user):
                return
            if p.role is Role.HEAD and (
                (state.department is not None and state.department == p.department)
                or self.heads(state.manager)
            ):
                return
            if (
                members
                and p.role in (Role.DEPARTMENT, Role.EXPERT)
                and p.department is not None
                and p.department == state.department
            ):
                return
            raise NotPermitted(
                "not_your_project",
                f"only the project's PM, the head of its department or top management may "
                f"{action} this project",
            )

        return check

    def activity(self, action: str) -> Guard:
        """The activity's owner, their head, or top management (seed 004: a head «может
        назначить дело сотруднику» and follows it)."""

        def check(state: activities.Activity) -> None:
            if not self.runs(state.owner):
                raise NotPermitted(
                    "not_your_activity",
                    f"only the activity's owner, their head or top management may {action} "
                    "this activity",
                )

        return check

    def assignment(self, may_approve: Callable[[str, str], bool]) -> Guard:
        """The approvers of the rules (the manager's head, or a named approver) decide a
        client assignment; ``may_approve`` is the rules' own test, not a copy of it."""

        def check(state: limits.ClientAssignment) -> None:
            manager = state.requested_manager or state.manager or ""
            if not may_approve(self.principal.user, manager):
                raise NotPermitted(
                    "head_approval_required",
                    f"only the head of {manager} or an approver may decide this assignment",
                )

        return check

    def prepayment_approval(self, may_approve: Callable[[str, str], bool]) -> Guard:
        """The deal manager's head or a named approver decide a prepayment invoice;
        ``may_approve`` is the rules' own test (the deal's decider applies it too)."""

        def check(state: deal.Deal) -> None:
            if not may_approve(self.principal.user, state.manager):
                raise NotPermitted(
                    "prepayment_approver",
                    f"only the head of {state.manager} or a prepayment approver may decide "
                    "this deal's prepayment invoices",
                )

        return check

    def may_own(self, owner: str, field: str) -> None:
        """A new record (lead, deal, assignment) may name this owner: a manager only
        themselves, a head their department's people, an assistant the managers they work
        for, top management anyone."""
        p = self.principal
        if p.role is Role.ASSISTANT:
            if not self.assists(owner):
                raise NotPermitted(
                    "not_your_manager",
                    f"an assistant may name as {field} only a manager they work for "
                    f"({owner} is not one of them)",
                )
            return
        if not self.runs(owner):
            whom = "themselves" if p.role is Role.MANAGER else "people of their department"
            raise NotPermitted(
                "not_your_team",
                f"{p.role.with_article} may name only {whom} as {field}",
            )

    def acts_as(self, person: str, field: str) -> None:
        """Workers record only their own hours; PMs, heads and top anyone's."""
        p = self.principal
        if p.role in (Role.DEPARTMENT, Role.EXPERT) and person != p.user:
            raise NotPermitted(
                "own_hours_only", f"{p.role.with_article} records only their own {field}"
            )

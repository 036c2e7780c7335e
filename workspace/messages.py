"""Words the templates translate from data (roles, lead statuses), marked for extraction."""

from __future__ import annotations


def N_(message: str) -> str:
    return message


ROLES = (
    N_("manager"),
    N_("head"),
    N_("top"),
    N_("pm"),
    N_("expert"),
    N_("department worker"),
    N_("analyst"),
    N_("auditor"),
    N_("admin"),
)
ROLE_MSGIDS = {"department": "department worker"}
"""Roles whose value is also a report column's name ("department"): shown by another
msgid, so that the column reads "Department" and the role "department worker"."""
LEAD_STATUSES = (N_("open"), N_("paused"), N_("won"), N_("lost"), N_("non_quality"))
SECTIONS = (N_("Home"), N_("Leads"))
HEALTH = (N_("good"), N_("some_difficulties"), N_("big_difficulties"))

"""The texts of alert e-mails, from the workspace's catalogues (ru/en): the subject line
and the plain-text body, with a link to the alert's subject in the workspace."""

from __future__ import annotations

from dataclasses import dataclass

from projections.deals import RaisedAlert
from queries.alerts import subject_path
from workspace import i18n


def _(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


KIND_LABELS = {
    "reminder": _("Reminder"),
    "escalation": _("Escalation"),
    "approval_request": _("Approval request"),
    "overdue": _("Overdue activity"),
}
"""Each kind of alert's label (a kind without one is shown as it is named)."""

SUBJECT_LABELS = {
    "lead": _("lead"),
    "deal": _("deal"),
    "handoff": _("hand-off request"),
    "client_assignment": _("client assignment"),
    "project": _("project"),
    "activity": _("activity"),
}


def kind_label(kind: str, language: str) -> str:
    label = KIND_LABELS.get(kind)
    return i18n.translations(language).gettext(label) if label else kind


def subject_label(subject_type: str, language: str) -> str:
    label = SUBJECT_LABELS.get(subject_type)
    return i18n.translations(language).gettext(label) if label else subject_type


@dataclass(frozen=True)
class AlertMail:
    subject: str
    body: str
    link: str


def workspace_link(public_url: str, alert: RaisedAlert) -> str:
    """The alert's subject in the workspace (the alerts page for one without a page)."""
    path = subject_path(alert.subject_type, alert.subject_id) or "/alerts"
    return f"{public_url.rstrip('/')}/workspace{path}"


def compose(alert: RaisedAlert, name: str, language: str, public_url: str) -> AlertMail:
    """The e-mail of an alert to ``name``, in ``language``."""
    gettext = i18n.translations(language).gettext
    kind = kind_label(alert.kind, language)
    what = subject_label(alert.subject_type, language)
    link = workspace_link(public_url, alert)
    subject = gettext("LeadLedger: %(kind)s, %(subject)s") % {"kind": kind, "subject": what}
    lines = [
        gettext("Hello, %(name)s.") % {"name": name},
        "",
        f"{kind} · {what}",
        alert.detail,
    ]
    if alert.due is not None:
        lines.append(gettext("Due: %(day)s") % {"day": i18n.day(alert.due, language)})
    lines += [
        gettext("Raised: %(moment)s") % {"moment": i18n.moment(alert.raised_at, language)},
        "",
        gettext("Open it in the workspace: %(link)s") % {"link": link},
        "",
        gettext("You receive this because the alert is addressed to you in LeadLedger."),
    ]
    return AlertMail(subject, "\n".join(lines) + "\n", link)

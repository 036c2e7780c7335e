"""The mailer: follows the event log and e-mails every alert to its recipient.

An alert is an event of one of :data:`projections.deals.ALERTS`' types (a reminder, an
escalation, a hand-off not taken, an approval asked for, an overdue activity...); the
mailer turns each into one message to the recipient's work address from the user
directory, in the configured language, with a link to the alert's subject in the
workspace, and sends it over SMTP (``LEADLEDGER_SMTP_*``).

The first time it runs it starts at the head of the log: alerts raised before e-mail was
switched on are not sent. Run one mailer per event store (``serve`` with SMTP configured,
or ``leadledger mail`` and ``LEADLEDGER_MAILER=false`` for the servers): two would each
send every alert.

**Exactly once per alert across restarts.** Alerts are sent one at a time, in log order.
After the SMTP server accepted an alert's message, one transaction in the event store's
own database records the alert as sent (``leadledger_alert_mail``) and moves the mailer's
position (``mailer:smtp`` among the process managers' positions) past it; an alert found
in the record is never sent again. The one window left is a crash after the server
accepted the message and before that transaction commits: the alert is then sent once
more on restart, with the same ``Message-ID`` (derived from the alert), so a mail system
that deduplicates by Message-ID shows it once; at most one duplicate per crash.

**Retried with back-off.** While the server cannot be reached or refuses for now (a 4xx
answer, a dropped connection, a failed login) the mailer keeps its position and tries the
same alert again after a doubling wait (``mail_poll_seconds`` up to
``mail_max_backoff_seconds``): nothing is lost and nothing overtakes it. A permanent
refusal of the message (a 5xx answer to the recipient or the data) is recorded as
``refused`` with the server's answer and skipped, as is an alert whose recipient has no
e-mail address (``no_address``).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, cast

from commands.context import StreamNotFound
from commands.users import load_user
from event_store import EventStore
from leadledger.metrics import Sample
from leadledger.settings import Settings
from process_managers.state import ProcessStore
from projections.deals import ALERTS, RaisedAlert, page_events, raised_alert
from workspace.mail import compose

log = logging.getLogger("leadledger.mailer")

MAILER_POSITION = "mailer:smtp"
MAIL_TABLE = "leadledger_alert_mail"
SENT, REFUSED, NO_ADDRESS = "sent", "refused", "no_address"


class MailUnavailable(Exception):
    """The SMTP server cannot take the message now: try the same alert again later."""


class MailRefused(Exception):
    """The SMTP server refused this message for good (a 5xx answer)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str
    password: str
    sender: str
    starttls: bool
    use_ssl: bool
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        port = settings.smtp_port or (
            465 if settings.smtp_ssl else 587 if settings.smtp_starttls else 25
        )
        return cls(
            settings.smtp_host.strip(),
            port,
            settings.smtp_username,
            settings.smtp_password.get_secret_value(),
            settings.smtp_from,
            settings.smtp_starttls,
            settings.smtp_ssl,
            settings.smtp_timeout_seconds,
        )


class SmtpSender:
    """Sends messages over one SMTP connection, opened on first use and kept until a
    failure or :meth:`close`; maps the server's answers to retry or skip."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        smtp: smtplib.SMTP
        if c.use_ssl:
            smtp = smtplib.SMTP_SSL(
                c.host, c.port, timeout=c.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        try:
            smtp.ehlo()
            if c.starttls and not c.use_ssl:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if c.username:
                smtp.login(c.username, c.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        """Deliver to the server; MailUnavailable (retry) or MailRefused (skip)."""
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as refused:
            self.close()
            codes = [code for code, _ in refused.recipients.values()]
            answer = "; ".join(
                f"{code} {text.decode(errors='replace')}"
                for code, text in refused.recipients.values()
            )
            if codes and all(500 <= code < 600 for code in codes):
                raise MailRefused(answer) from None
            raise MailUnavailable(answer) from None
        except smtplib.SMTPDataError as refused:
            self.close()
            error = refused.smtp_error
            text = error.decode(errors="replace") if isinstance(error, bytes) else error
            answer = f"{refused.smtp_code} {text}"
            if 500 <= refused.smtp_code < 600:
                raise MailRefused(answer) from None
            raise MailUnavailable(answer) from None
        except (smtplib.SMTPException, OSError) as down:
            # a dropped connection, a 4xx, a refused login or sender: the server or its
            # configuration, not this message, so the alert waits for it
            self.close()
            raise MailUnavailable(f"{type(down).__name__}: {down}") from None

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


class MailLedger:
    """The mailer's position and its record of alerts handled, in the event store's own
    database (SQLite or PostgreSQL), written together in one transaction."""

    def __init__(self, store: EventStore) -> None:
        self.positions = ProcessStore(store)  # creates the positions table
        self.recorder: Any = cast(Any, store.recorder)
        if store.backend == "postgresql":
            schema = self.recorder.datastore.schema or "public"
            self._table = f'"{schema}".{MAIL_TABLE}'
            self._positions = f'"{schema}".leadledger_process_positions'
            self._p = "%s"
        else:
            self._table = MAIL_TABLE
            self._positions = "leadledger_process_positions"
            self._p = "?"
        with self._transaction() as c:
            c.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {table} (alert_id BIGINT PRIMARY KEY, "
                    "recipient TEXT NOT NULL, address TEXT, outcome TEXT NOT NULL, "
                    "answer TEXT, message_id TEXT, handled_at TEXT NOT NULL)"
                )
            )

    def _sql(self, text: str) -> str:
        return text.format(table=self._table, positions=self._positions, p=self._p)

    @contextmanager
    def _transaction(self, *, commit: bool = True) -> Iterator[Any]:
        with self.recorder.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def position(self) -> int:
        return self.positions.position(MAILER_POSITION)

    def start_at(self, position: int) -> None:
        """Where a mailer that never ran starts (a stored position is kept)."""
        with self._transaction() as c:
            c.execute(
                self._sql(
                    "INSERT INTO {positions} (name, position) VALUES ({p}, {p}) "
                    "ON CONFLICT (name) DO NOTHING"
                ),
                (MAILER_POSITION, position),
            )

    def outcome(self, alert_id: int) -> str | None:
        """How the alert was handled (None: not yet)."""
        with self._transaction(commit=False) as c:
            c.execute(self._sql("SELECT outcome FROM {table} WHERE alert_id = {p}"), (alert_id,))
            row = c.fetchone()
        if row is None:
            return None
        return str(row["outcome"] if isinstance(row, dict) else row[0])

    def handled(self) -> list[dict[str, Any]]:
        """Every alert handled, in order (for tests and operators)."""
        with self._transaction(commit=False) as c:
            c.execute(
                self._sql(
                    "SELECT alert_id, recipient, address, outcome, answer, message_id "
                    "FROM {table} ORDER BY alert_id"
                )
            )
            rows = c.fetchall()
        names = ("alert_id", "recipient", "address", "outcome", "answer", "message_id")
        return [
            {n: row[n] for n in names}
            if isinstance(row, dict)
            else dict(zip(names, row, strict=True))
            for row in rows
        ]

    def record(
        self,
        alert: RaisedAlert,
        outcome: str,
        at: datetime,
        *,
        address: str | None = None,
        answer: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """The alert is handled: record how and move the position past it, atomically."""
        with self._transaction() as c:
            c.execute(
                self._sql(
                    "INSERT INTO {table} (alert_id, recipient, address, outcome, answer, "
                    "message_id, handled_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) "
                    "ON CONFLICT (alert_id) DO NOTHING"
                ),
                (
                    alert.alert_id,
                    alert.recipient,
                    address,
                    outcome,
                    answer,
                    message_id,
                    at.isoformat(),
                ),
            )
            self._advance(c, alert.alert_id)

    def advance(self, position: int) -> None:
        """Nothing to send up to ``position``: move past it."""
        with self._transaction() as c:
            self._advance(c, position)

    def _advance(self, c: Any, position: int) -> None:
        c.execute(
            self._sql(
                "INSERT INTO {positions} (name, position) VALUES ({p}, {p}) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position "
                "WHERE {positions}.position < excluded.position"
            ),
            (MAILER_POSITION, position),
        )


@dataclass
class MailerStats:
    """What /metrics and the tests read."""

    sent_total: int = 0
    refused_total: int = 0
    no_address_total: int = 0
    failures_total: int = 0
    position: int = 0
    waiting_since: float | None = None
    last_failure: str | None = None


def message_id(alert: RaisedAlert, sender: str) -> str:
    """The same Message-ID every time this alert is sent (a duplicate after a crash is
    recognisable as one)."""
    domain = sender.rpartition("@")[2] or "leadledger"
    digest = hashlib.sha256(f"{alert.subject_id}:{alert.alert_id}".encode()).hexdigest()[:16]
    return f"<alert-{alert.alert_id}-{digest}@{domain}>"


class Mailer:
    """Follows the log from its own stored position; see the module's docstring."""

    def __init__(
        self,
        store: EventStore,
        sender: SmtpSender,
        *,
        language: str = "ru",
        public_url: str = "http://127.0.0.1:8000",
        page_size: int = 1_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.sender = sender
        self.language = language
        self.public_url = public_url
        self.page_size = page_size
        self.clock = clock
        self.ledger = MailLedger(store)
        # the first time, from the head of the log: switching e-mail on does not send
        # every alert of the past
        self.ledger.start_at(store.last_position())
        self.stats = MailerStats(position=self.ledger.position())
        self.topics = frozenset(ALERTS)
        self._wake = threading.Event()

    def notify(self, _position: int = 0) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """Handle the next page of the log; how many events it read (0: at the head).
        Raises MailUnavailable, keeping the position at the alert that waits."""
        after = self.ledger.position()
        page = self.store.read_page(after, self.page_size)
        if page.num_rows == 0:
            return 0
        for event in page_events(page, self.topics):
            alert = raised_alert(event)
            if alert is None or self.ledger.outcome(alert.alert_id) is not None:
                continue
            self._handle(alert)
        last = int(page["position"][-1].as_py())
        self.ledger.advance(last)
        self.stats.position = last
        return int(page.num_rows)

    def _handle(self, alert: RaisedAlert) -> None:
        try:
            user = load_user(self.store, alert.recipient)
        except StreamNotFound:
            user = None
        address = user.email if user is not None and user.active else None
        if not address:
            self.ledger.record(alert, NO_ADDRESS, self.clock())
            self.stats.no_address_total += 1
            log.info("alert %d: %s has no e-mail address; skipped", alert.alert_id, alert.recipient)
            return
        assert user is not None
        mail = compose(alert, user.name or user.username, self.language, self.public_url)
        message = EmailMessage()
        message["From"] = self.sender.config.sender
        message["To"] = address
        message["Subject"] = mail.subject
        message["Message-ID"] = message_id(alert, self.sender.config.sender)
        message["Date"] = format_datetime(alert.raised_at.astimezone(UTC))
        message["X-LeadLedger-Alert"] = str(alert.alert_id)
        message.set_content(mail.body)
        try:
            self.sender.send(message)
        except MailRefused as refused:
            self.ledger.record(
                alert,
                REFUSED,
                self.clock(),
                address=address,
                answer=str(refused),
                message_id=message["Message-ID"],
            )
            self.stats.refused_total += 1
            log.warning("alert %d to %s refused for good: %s", alert.alert_id, address, refused)
            return
        self.ledger.record(
            alert, SENT, self.clock(), address=address, message_id=message["Message-ID"]
        )
        self.stats.sent_total += 1

    def catch_up(self) -> int:
        """Handle the log up to its head as it is now (MailUnavailable if the server is
        down); events read."""
        total = 0
        try:
            while read := self.run_once():
                total += read
        finally:
            self.sender.close()
        return total

    def run_forever(
        self, stop: threading.Event, poll_seconds: float = 1.0, max_backoff: float = 300.0
    ) -> None:
        """Follow the log until ``stop`` is set, waiting out an unreachable server."""
        backoff = poll_seconds
        while not stop.is_set():
            try:
                read = self.run_once()
                backoff = poll_seconds
                self.stats.waiting_since = None
                if read:
                    continue  # more may be waiting
                self.sender.close()  # idle: no connection held open
            except Exception as exc:  # MailUnavailable, or the database for a moment
                self.stats.failures_total += 1
                self.stats.last_failure = str(exc)
                log.warning(
                    "mailer: cannot send now (%s); alerts after position %d wait, retried in %.1fs",
                    exc,
                    self.ledger_position_safe(),
                    backoff,
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, max_backoff)
                continue
            self._wake.wait(poll_seconds)
            self._wake.clear()
        self.sender.close()

    def ledger_position_safe(self) -> int:
        try:
            return int(self.ledger.position())
        except Exception:
            return self.stats.position


def mailer_from(
    store: EventStore,
    settings: Settings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Mailer:
    """The mailer the settings describe (``settings.sends_mail`` must be true)."""
    if not settings.sends_mail:
        raise ValueError("LEADLEDGER_SMTP_HOST is not set: nowhere to send alerts")
    return Mailer(
        store,
        SmtpSender(SmtpConfig.from_settings(settings)),
        language=settings.mail_language,
        public_url=settings.public_url,
        clock=clock,
    )


def mailer_samples(mailer: Mailer, head: int) -> list[Sample]:
    """The mailer's figures for /metrics (``head``: the log's last position)."""
    stats = mailer.stats
    return [
        Sample(
            "leadledger_mail_position", "gauge", "Last position the mailer handled", stats.position
        ),
        Sample(
            "leadledger_mail_lag_events",
            "gauge",
            "Events the mailer has not handled yet (grows while SMTP is down)",
            max(0, head - stats.position),
        ),
        Sample(
            "leadledger_mail_sent_total", "counter", "Alerts e-mailed since start", stats.sent_total
        ),
        Sample(
            "leadledger_mail_refused_total",
            "counter",
            "Alerts the SMTP server refused for good (5xx), recorded and skipped",
            stats.refused_total,
        ),
        Sample(
            "leadledger_mail_no_address_total",
            "counter",
            "Alerts skipped because the recipient has no e-mail address",
            stats.no_address_total,
        ),
        Sample(
            "leadledger_mail_failures_total",
            "counter",
            "Attempts that found the SMTP server down or refusing for now (each retried)",
            stats.failures_total,
        ),
    ]

"""Alerts e-mailed to their recipients (issue 15 "Alerts reach people"), against a real
SMTP server (aiosmtpd in a thread, on a free port), never a mock: one message per alert
with the right recipient, subject and link; none again after a restart; held while the
server is down or refuses for now and sent when it is back, in order; a permanent
refusal recorded and skipped; no message to a user without an address. The record of
sent alerts lives in the event store's database: SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from aggregates import users
from commands.context import CommandContext
from commands.users import register_user
from leadledger.settings import Settings
from leadledger.wiring import Platform
from notifications.mailer import (
    NO_ADDRESS,
    REFUSED,
    SENT,
    Mailer,
    MailUnavailable,
    mailer_from,
)
from tests.conftest import FakeClock, PlatformFactory
from tests.kafka_broker import free_port
from tests.test_deal_projections import PipelineDriver


class Recorder:
    """An aiosmtpd handler keeping what it accepts; ``refusals`` queues answers to give
    to the next recipients instead of accepting them (``"451 ..."``, ``"550 ..."``)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refusals: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on a fixed port, which the test can stop (the server is down) and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = Recorder()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Message]:
        return self.recorder.messages


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def platform(
    request: pytest.FixtureRequest, make_platform: PlatformFactory, smtp: SmtpServer
) -> Platform:
    """A platform (no background workers) whose settings point at the test's SMTP server,
    on each event store back-end."""
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgres" else None
    return make_platform(
        url,
        process_managers=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="alerts@leadledger.test",
        public_url="https://crm.example.test",
        mail_poll_seconds=0.05,
        mail_max_backoff_seconds=0.2,
    )


def register(platform: Platform, username: str, name: str, email: str | None) -> None:
    ctx = CommandContext.new(actor="adam.admin", clock=platform.clock, actor_role="admin")
    command = users.RegisterUser(username, name, "manager", "sales", "north", None, email)
    register_user(platform.store, command, ctx)


class Alerts:
    """Raises reminders about hand-off requests of one deal (one request each)."""

    def __init__(self, platform: Platform, clock: FakeClock) -> None:
        self.driver = PipelineDriver(platform.store, clock, rules=platform.rules)
        self.deal_id = self.driver.deal_from_lead("transport", manager="vera", company_id="acme")
        self.driver.open_estimate(self.deal_id)
        self.clock = clock

    def remind(self, recipient: str) -> tuple[int, str]:
        """A reminder to ``recipient``: the alert's id and its request's id."""
        self.clock.advance(hours=1)
        request_id = self.driver.request(self.deal_id, "logistics")
        result = self.driver.remind_request(request_id, recipient)
        return result.position, str(request_id)


def mail_text(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    body = message.get_body()
    assert body is not None
    text: str = body.get_content()
    return text


def new_mailer(platform: Platform) -> Mailer:
    return mailer_from(platform.store, platform.settings)


def test_an_alert_is_mailed_once_to_its_recipient(
    platform: Platform, clock: FakeClock, smtp: SmtpServer
) -> None:
    register(platform, "vera", "Вера Петрова", "vera@example.test")  # noqa: RUF001
    alerts = Alerts(platform, clock)
    alert_id, request_id = alerts.remind("vera")

    mailer = new_mailer(platform)
    mailer.catch_up()
    (message,) = smtp.messages
    assert message["To"] == "vera@example.test"
    assert message["From"] == "alerts@leadledger.test"
    assert smtp.recorder.envelopes == [("alerts@leadledger.test", ["vera@example.test"])]
    assert message["Subject"] == "LeadLedger: Напоминание, запрос в отдел"
    assert message["Message-ID"].startswith(f"<alert-{alert_id}-")
    assert message["Message-ID"].endswith("@leadledger.test>")
    body = mail_text(message)
    assert "Вера Петрова" in body  # noqa: RUF001
    assert f"https://crm.example.test/workspace/handoffs/{request_id}" in body
    assert mailer.stats.sent_total == 1
    assert [(h["alert_id"], h["outcome"]) for h in mailer.ledger.handled()] == [(alert_id, SENT)]

    # a second pass, and a new mailer (a restart), send nothing again
    mailer.catch_up()
    restarted = new_mailer(platform)
    restarted.catch_up()
    assert len(smtp.messages) == 1
    assert restarted.ledger.position() == platform.store.last_position()


def test_two_alerts_two_messages_in_order_and_none_without_an_address(
    platform: Platform, clock: FakeClock, smtp: SmtpServer
) -> None:
    register(platform, "vera", "Vera", "vera@example.test")
    register(platform, "boris", "Boris", None)
    alerts = Alerts(platform, clock)
    first, _ = alerts.remind("vera")
    nobody, _ = alerts.remind("boris")
    unknown, _ = alerts.remind("ghost")
    second, _ = alerts.remind("vera")
    mailer = new_mailer(platform)
    mailer.catch_up()
    assert [m["X-LeadLedger-Alert"] for m in smtp.messages] == [str(first), str(second)]
    assert [m["To"] for m in smtp.messages] == ["vera@example.test"] * 2
    assert mailer.stats.no_address_total == 2
    handled = {h["alert_id"]: h["outcome"] for h in mailer.ledger.handled()}
    assert handled == {first: SENT, nobody: NO_ADDRESS, unknown: NO_ADDRESS, second: SENT}


def test_a_server_that_is_down_gets_the_alert_when_it_is_back(
    platform: Platform, clock: FakeClock, smtp: SmtpServer
) -> None:
    register(platform, "vera", "Vera", "vera@example.test")
    alerts = Alerts(platform, clock)
    smtp.stop()
    first, _ = alerts.remind("vera")
    second, _ = alerts.remind("vera")
    mailer = new_mailer(platform)
    with pytest.raises(MailUnavailable):
        mailer.catch_up()
    assert mailer.ledger.handled() == []
    assert mailer.ledger.position() < first

    # the worker retries by itself, with back-off, until the server is back
    stop = threading.Event()
    worker = threading.Thread(
        target=mailer.run_forever, args=(stop, 0.05, 0.2), name="test-mailer", daemon=True
    )
    worker.start()
    try:
        time.sleep(0.5)
        assert mailer.stats.failures_total >= 2
        smtp.start()
        deadline = time.monotonic() + 15
        while len(smtp.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        mailer.notify()
        worker.join(10)
    assert [m["X-LeadLedger-Alert"] for m in smtp.messages] == [str(first), str(second)]


def test_a_temporary_refusal_is_retried_a_permanent_one_recorded_and_skipped(
    platform: Platform, clock: FakeClock, smtp: SmtpServer
) -> None:
    register(platform, "vera", "Vera", "vera@example.test")
    alerts = Alerts(platform, clock)
    first, _ = alerts.remind("vera")
    second, _ = alerts.remind("vera")
    smtp.recorder.refusals = ["451 4.3.0 Try again later"]
    mailer = new_mailer(platform)
    with pytest.raises(MailUnavailable, match="451"):
        mailer.catch_up()
    assert smtp.messages == []
    mailer.catch_up()
    assert [m["X-LeadLedger-Alert"] for m in smtp.messages] == [str(first), str(second)]

    third, _ = alerts.remind("vera")
    fourth, _ = alerts.remind("vera")
    smtp.recorder.refusals = ["550 5.1.1 No such mailbox"]
    mailer.catch_up()
    assert [m["X-LeadLedger-Alert"] for m in smtp.messages][2:] == [str(fourth)]
    refused = [h for h in mailer.ledger.handled() if h["outcome"] == REFUSED]
    assert [(h["alert_id"], h["answer"][:3]) for h in refused] == [(third, "550")]
    assert mailer.stats.refused_total == 1


def test_english_mail_with_the_default_public_url(
    make_platform: PlatformFactory, clock: FakeClock, smtp: SmtpServer
) -> None:
    platform = make_platform(
        process_managers=False,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        mail_language="en",
    )
    register(platform, "vera", "Vera", "vera@example.test")
    _, request_id = Alerts(platform, clock).remind("vera")
    new_mailer(platform).catch_up()
    (message,) = smtp.messages
    assert message["Subject"] == "LeadLedger: Reminder, hand-off request"
    body = mail_text(message)
    assert f"http://127.0.0.1:8000/workspace/handoffs/{request_id}" in body


def test_no_smtp_host_no_mailer() -> None:
    settings = Settings(smtp_host="")
    assert not settings.sends_mail
    with pytest.raises(ValueError, match="SMTP_HOST"):
        mailer_from(None, settings)  # type: ignore[arg-type]


def test_a_crash_between_accept_and_record_sends_one_duplicate_with_the_same_id(
    platform: Platform, clock: FakeClock, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window the README owns up to: the server took the message, the process died
    before the record committed. On restart the alert goes once more, same Message-ID."""
    register(platform, "vera", "Vera", "vera@example.test")
    alert_id, _ = Alerts(platform, clock).remind("vera")
    crashing = new_mailer(platform)

    def crash(*_: Any, **__: Any) -> None:
        raise SystemExit("killed after the SMTP server accepted the message")

    monkeypatch.setattr(crashing.ledger, "record", crash)
    with pytest.raises(SystemExit):
        crashing.catch_up()
    assert len(smtp.messages) == 1

    restarted = new_mailer(platform)
    restarted.catch_up()
    restarted.catch_up()
    first, again = smtp.messages
    assert first["Message-ID"] == again["Message-ID"]
    assert [h["alert_id"] for h in restarted.ledger.handled()] == [alert_id]


def test_the_server_reports_the_mailer_in_its_metrics(
    platform: Platform, clock: FakeClock, smtp: SmtpServer
) -> None:
    from fastapi.testclient import TestClient

    from read_api.app import create_app

    register(platform, "vera", "Vera", "vera@example.test")
    Alerts(platform, clock).remind("vera")
    assert platform.mailer is not None  # an SMTP host is set: serve would run it
    platform.mailer.catch_up()
    with TestClient(create_app(platform, background=False, close_on_exit=False)) as api:
        text = api.get("/metrics").text
    assert "leadledger_mail_sent_total 1" in text
    assert "leadledger_mail_lag_events 0" in text


def test_switching_mail_on_sends_no_alert_of_the_past(
    make_platform: PlatformFactory, clock: FakeClock, smtp: SmtpServer
) -> None:
    platform = make_platform(process_managers=False)  # no SMTP host: no mailer
    assert platform.mailer is None
    register(platform, "vera", "Vera", "vera@example.test")
    alerts = Alerts(platform, clock)
    alerts.remind("vera")
    settings = platform.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port}
    )
    mailer = mailer_from(platform.store, settings)
    mailer.catch_up()
    assert smtp.messages == []
    later, _ = alerts.remind("vera")
    mailer_from(platform.store, settings).catch_up()
    assert [m["X-LeadLedger-Alert"] for m in smtp.messages] == [str(later)]

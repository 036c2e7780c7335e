"""Builds LeadLedger once from its Settings: event store, read models, projector."""

from __future__ import annotations

import logging
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregates.activities import ACTIVITY_EVENT_TYPES
from aggregates.activity_plans import ACTIVITY_PLAN_EVENT_TYPES
from aggregates.billing import BILLING_EVENT_TYPES
from aggregates.company import COMPANY_EVENT_TYPES
from aggregates.contact import CONTACT_EVENT_TYPES
from aggregates.contractor import CONTRACTOR_EVENT_TYPES
from aggregates.deal import DEAL_EVENT_TYPES, DEAL_IMPORT_EVENT_TYPES
from aggregates.deal import UPCASTERS as DEAL_UPCASTERS
from aggregates.directory_entry import DIRECTORY_EVENT_TYPES, DirectoryCatalog
from aggregates.funnels import FunnelCatalog
from aggregates.handoff import HANDOFF_EVENT_TYPES
from aggregates.import_mappings import IMPORT_MAPPING_EVENT_TYPES
from aggregates.inbox import INBOX_EVENT_TYPES
from aggregates.lead import LEAD_EVENT_TYPES, LEAD_IMPORT_EVENT_TYPES
from aggregates.lead import UPCASTERS as LEAD_UPCASTERS
from aggregates.limits import LIMIT_EVENT_TYPES
from aggregates.project import PROJECT_EVENT_TYPES
from aggregates.project import UPCASTERS as PROJECT_UPCASTERS
from aggregates.rules import Rules
from aggregates.sales_plans import SALES_PLAN_EVENT_TYPES
from aggregates.sensitive import SENSITIVE_EVENT_TYPES
from aggregates.status_limits import STATUS_LIMIT_EVENT_TYPES
from aggregates.timesheets import TIMESHEET_EVENT_TYPES
from aggregates.users import UPCASTERS as USER_UPCASTERS
from aggregates.users import USER_EVENT_TYPES
from event_store import EventStore, open_event_store
from event_store.codec import EventCodec
from event_store.credentials import Credentials, open_credentials
from event_store.keys import KeyStore, open_key_store
from leadledger.settings import DEFAULT_RULES_FILE, Settings
from leadledger.tokens import Signer, signer_from
from process_managers.deadlines import Deadlines
from process_managers.estimate_handoff import EstimateHandoff
from process_managers.lead_conversion import LeadConversion
from process_managers.projects import ProjectCreation, ProjectHealth
from process_managers.runner import ProcessManager, ProcessRunner
from projections.activities import ActivityPlanProjection, ActivityProjection
from projections.alert_reads import AlertReadProjection
from projections.base import Projection
from projections.cohorts import CohortProjection
from projections.companies import CompanyProjection
from projections.contacts import ContactProjection
from projections.database import ReadModelDatabase
from projections.deals import deal_projections
from projections.directories import DirectoryEntryProjection
from projections.directory import DirectoryProjection
from projections.lead_days import LeadDayProjection
from projections.leads import LeadProjection
from projections.plan_days import PlanDayProjection
from projections.process import ProcessVisitProjection
from projections.process_months import ProcessMonthProjection
from projections.project_labour import ProjectLabourProjection
from projections.projector import Projector
from projections.projects import project_projections
from projections.resource_months import ResourceMonthProjection
from projections.revenue import RevenueLedgerProjection
from projections.sales import sales_projections
from projections.status_time import status_time_projections
from relay.kafka import Sink
from relay.kafka import connect as connect_to_kafka
from relay.publishing import Publication
from relay.relay import Relay

if TYPE_CHECKING:
    from notifications.mailer import Mailer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def _load_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        raise ValueError(f"{what} file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{what} file {path} is not valid TOML: {exc}") from exc


def load_funnels(path: Path) -> FunnelCatalog:
    return FunnelCatalog.from_config(_load_toml(path, "funnel configuration"))


def load_rules(funnels_file: Path, rules_file: Path) -> Rules:
    """The rules; a section the file leaves out takes the packaged default."""
    rules = _load_toml(rules_file, "rules")
    if rules_file != DEFAULT_RULES_FILE:
        rules = {**_load_toml(DEFAULT_RULES_FILE, "rules"), **rules}
    return Rules.from_config(_load_toml(funnels_file, "funnel configuration"), rules)


def load_directories(path: Path) -> DirectoryCatalog:
    return DirectoryCatalog.from_config(_load_toml(path, "directories configuration"))


def event_codec() -> EventCodec:
    return EventCodec(
        (
            *LEAD_EVENT_TYPES,
            *COMPANY_EVENT_TYPES,
            *DEAL_EVENT_TYPES,
            *HANDOFF_EVENT_TYPES,
            *CONTRACTOR_EVENT_TYPES,
            *LIMIT_EVENT_TYPES,
            *PROJECT_EVENT_TYPES,
            *BILLING_EVENT_TYPES,
            *TIMESHEET_EVENT_TYPES,
            *USER_EVENT_TYPES,
            *SENSITIVE_EVENT_TYPES,
            *STATUS_LIMIT_EVENT_TYPES,
            *INBOX_EVENT_TYPES,
            *SALES_PLAN_EVENT_TYPES,
            *ACTIVITY_EVENT_TYPES,
            *ACTIVITY_PLAN_EVENT_TYPES,
            *LEAD_IMPORT_EVENT_TYPES,
            *DEAL_IMPORT_EVENT_TYPES,
            *IMPORT_MAPPING_EVENT_TYPES,
            *CONTACT_EVENT_TYPES,
            *DIRECTORY_EVENT_TYPES,
        ),
        upcasters={**LEAD_UPCASTERS, **DEAL_UPCASTERS, **PROJECT_UPCASTERS, **USER_UPCASTERS},
    )


def read_model_projections(funnels: FunnelCatalog, rules: Rules) -> list[Projection]:
    return [
        LeadProjection(funnels),
        DirectoryProjection(),
        *deal_projections(rules),
        # folded in Python as the deal models are: before any model that leaves a result
        # unread on the cursor (DuckDB then refuses the Arrow registration)
        ContactProjection(),
        DirectoryEntryProjection(),
        *project_projections(rules),
        PlanDayProjection(rules.project.calendar),
        ProjectLabourProjection(),
        # after plan_days and the projects' time entries it sums
        ResourceMonthProjection(),
        *status_time_projections(funnels, rules),
        # after the visits it is derived from (leads', deals' and projects')
        ProcessVisitProjection(),
        # after the process visits it is derived from
        ProcessMonthProjection(),
        # after the leads', deals' and projects' read models it is derived from
        CohortProjection(),
        LeadDayProjection(),
        RevenueLedgerProjection(),
        AlertReadProjection(),
        *sales_projections(),
        ActivityProjection(),
        ActivityPlanProjection(),
        CompanyProjection(),
    ]


def process_managers(
    store: EventStore, funnels: FunnelCatalog, rules: Rules, clock: Clock
) -> list[ProcessManager]:
    return [
        EstimateHandoff(store, rules, clock),
        LeadConversion(store, funnels, rules, clock),
        Deadlines(store, funnels, rules, clock),
        ProjectCreation(store, rules, clock, funnels),
        ProjectHealth(store, rules, clock),
    ]


def publication(side: CommandSide) -> Publication:
    return Publication(side.store.codec, side.settings.kafka_topic_prefix)


def kafka_relay(side: CommandSide) -> Relay:
    """The relay to the configured Kafka brokers (its producer connects on first use)."""
    settings = side.settings
    if not settings.kafka_bootstrap_servers:
        raise ValueError("LEADLEDGER_KAFKA_BOOTSTRAP_SERVERS is not set: nowhere to publish")

    def connect() -> Sink:
        return connect_to_kafka(
            settings.kafka_client,
            settings.kafka_bootstrap_servers,
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
        )

    return Relay(
        side.store,
        publication(side),
        connect,
        page_size=settings.relay_page_size,
        where=f"Kafka at {settings.kafka_bootstrap_servers}",
    )


def process_runner(side: CommandSide) -> ProcessRunner:
    managers = process_managers(side.store, side.funnels, side.rules, side.clock)
    return ProcessRunner(side.store, managers, side.clock)


@dataclass
class Platform:
    """Everything a process of LeadLedger runs on, built once."""

    settings: Settings
    funnels: FunnelCatalog
    rules: Rules
    store: EventStore
    db: ReadModelDatabase
    projector: Projector
    clock: Clock
    processes: ProcessRunner
    publication: Publication
    relay: Relay | None = None
    """Set when this process publishes to Kafka (a broker is configured and relay on)."""
    mailer: Mailer | None = None
    """Set when this process e-mails alerts (an SMTP server is configured and mailer on)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _signer: Signer | None = None
    _keys: KeyStore | None = None
    _credentials: Credentials | None = None
    _directories: DirectoryCatalog | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def directories(self) -> DirectoryCatalog:
        """The shared directories' kinds (read from the settings' file on first use)."""
        with self._lock:
            if self._directories is None:
                self._directories = load_directories(self.settings.directories_file)
            return self._directories

    @property
    def signer(self) -> Signer:
        """Signs and checks bearer tokens (the API needs it; workers never ask)."""
        with self._lock:
            if self._signer is None:
                self._signer = signer_from(self.settings)
            return self._signer

    @property
    def keys(self) -> KeyStore:
        """The data subjects' keys, opened on first use (the API's sensitive section)."""
        with self._lock:
            if self._keys is None:
                self._keys = open_key_store(
                    self.settings.key_store_url, self.settings.event_store_url, clock=self.clock
                )
            return self._keys

    @property
    def credentials(self) -> Credentials:
        """Users' password hashes, beside the key store (the workspace's sign-in)."""
        with self._lock:
            if self._credentials is None:
                self._credentials = open_credentials(
                    self.settings.key_store_url, self.settings.event_store_url, clock=self.clock
                )
            return self._credentials

    def start_background(self) -> None:
        """Run the projector in this process, woken by every local append. Once: a second
        call (a second app lifespan on the same platform) starts nothing, since two
        projectors on one DuckDB connection would abort each other's transactions."""
        if self._threads:
            return
        self.store.on_append(self.projector.notify)
        thread = threading.Thread(
            target=self.projector.run_forever,
            args=(self._stop, self.settings.projector_poll_seconds),
            name="leadledger-projector",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)
        if self.settings.process_managers:
            self.store.on_append(self.processes.notify)
            runner = threading.Thread(
                target=self.processes.run_forever,
                args=(self._stop, self.settings.process_poll_seconds),
                name="leadledger-process-managers",
                daemon=True,
            )
            runner.start()
            self._threads.append(runner)
        if self.relay is not None:
            self.store.on_append(self.relay.notify)
            relay = threading.Thread(
                target=self.relay.run_forever,
                args=(self._stop, self.settings.relay_poll_seconds),
                name="leadledger-relay",
                daemon=True,
            )
            relay.start()
            self._threads.append(relay)
        if self.mailer is not None:
            self.store.on_append(self.mailer.notify)
            mailer = threading.Thread(
                target=self.mailer.run_forever,
                args=(
                    self._stop,
                    self.settings.mail_poll_seconds,
                    self.settings.mail_max_backoff_seconds,
                ),
                name="leadledger-mailer",
                daemon=True,
            )
            mailer.start()
            self._threads.append(mailer)

    def close(self) -> None:
        self._stop.set()
        self.projector.notify()
        self.processes.notify()
        if self.relay is not None:
            self.relay.notify()
        if self.mailer is not None:
            self.mailer.notify()
        for thread in self._threads:
            thread.join(timeout=10)
        self.store.close()
        if self._keys is not None:
            self._keys.close()
        if self._credentials is not None:
            self._credentials.close()
        self.db.close()


@dataclass
class CommandSide:
    """The event store and the funnels alone: enough to send commands or replay history,
    without opening the DuckDB file (which a running server holds)."""

    settings: Settings
    funnels: FunnelCatalog
    rules: Rules
    store: EventStore
    clock: Clock

    def close(self) -> None:
        self.store.close()


def build_command_side(
    settings: Settings | None = None, *, clock: Clock = system_clock
) -> CommandSide:
    settings = settings or Settings()
    funnels = load_funnels(settings.funnels_file)
    rules = load_rules(settings.funnels_file, settings.rules_file)
    return CommandSide(
        settings, funnels, rules, open_event_store(settings.event_store_url, event_codec()), clock
    )


def build(settings: Settings | None = None, *, clock: Clock = system_clock) -> Platform:
    """The command side plus the read models and their projector."""
    side = build_command_side(settings, clock=clock)
    db = ReadModelDatabase(side.settings.duckdb_path)
    projector = Projector(
        side.store,
        db,
        read_model_projections(side.funnels, side.rules),
        page_size=side.settings.projector_page_size,
    )
    return Platform(
        side.settings,
        side.funnels,
        side.rules,
        side.store,
        db,
        projector,
        clock,
        process_runner(side),
        publication(side),
        kafka_relay(side)
        if side.settings.kafka_bootstrap_servers and side.settings.relay
        else None,
        alert_mailer(side) if side.settings.sends_mail and side.settings.mailer else None,
    )


def alert_mailer(side: CommandSide) -> Mailer:
    """The mailer of alerts to the configured SMTP server (see notifications.mailer)."""
    from notifications.mailer import mailer_from  # it reads the workspace's catalogues

    return mailer_from(side.store, side.settings, clock=side.clock)

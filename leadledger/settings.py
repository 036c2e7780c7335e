"""The one place LeadLedger reads its configuration from (``LEADLEDGER_*`` variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_FUNNELS_FILE = Path(__file__).parent / "config" / "funnels.toml"
DEFAULT_RULES_FILE = Path(__file__).parent / "config" / "rules.toml"
DEFAULT_DIRECTORIES_FILE = Path(__file__).parent / "config" / "directories.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADLEDGER_", extra="ignore")

    event_store_url: str = Field(
        default="sqlite:///data/events.sqlite",
        description="sqlite:///relative/path, sqlite:////absolute/path or "
        "postgresql://user:password@host:port/dbname[?schema=name]",
    )
    duckdb_path: Path = Field(
        default=Path("data/read_models.duckdb"),
        description="DuckDB file holding the read models (':memory:' for none on disk)",
    )
    funnels_file: Path = Field(
        default=DEFAULT_FUNNELS_FILE,
        description="TOML file defining lead and deal funnels and the departments' funnels",
    )
    rules_file: Path = Field(
        default=DEFAULT_RULES_FILE,
        description="TOML file with escalation, client caps and organisations",
    )
    directories_file: Path = Field(
        default=DEFAULT_DIRECTORIES_FILE,
        description="TOML file declaring the shared directories' kinds and their fields",
    )
    process_managers: bool = Field(
        default=True,
        description="run the process managers inside the server (embedded mode); set "
        "false where `leadledger process` runs them on its own",
    )
    process_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often the process managers look for new events"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    projector_page_size: int = Field(
        default=20_000, ge=1, description="events the projector folds per DuckDB transaction"
    )
    projector_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often the projector looks for new events"
    )
    read_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how long a query with min_position waits for the read models",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=1024**3,
        description="largest request body the API accepts; a larger one is refused with "
        "413 before it is read",
    )

    kafka_bootstrap_servers: str = Field(
        default="",
        description="Kafka brokers (host:port[,host:port]) the relay publishes to; empty "
        "turns publishing off",
    )
    kafka_client: Literal["kafka-python", "confluent"] = Field(
        default="kafka-python",
        description="the relay's Kafka client: kafka-python (pure Python, ~10k events/s "
        "here) or confluent (librdkafka; see bench/README.md)",
    )
    kafka_topic_prefix: str = Field(
        default="leadledger",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="topics are <prefix>.<aggregate type>, e.g. leadledger.lead",
    )
    kafka_partitions: int = Field(
        default=3, ge=1, le=10_000, description="partitions of the topics the relay creates"
    )
    kafka_replication_factor: int = Field(
        default=1, ge=1, le=32, description="replication factor of the topics the relay creates"
    )
    relay: bool = Field(
        default=True,
        description="run the relay inside the server when a broker is configured; set false "
        "where `leadledger relay` runs it on its own",
    )
    relay_page_size: int = Field(
        default=5_000, ge=1, le=100_000, description="events the relay publishes per batch"
    )
    relay_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often the relay looks for new events"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="worker commands (relay, project, process) serve /metrics on this port",
    )

    auth_secret: SecretStr = Field(
        default=SecretStr(""),
        description="secret that signs bearer tokens (at least 32 characters); empty on the "
        "embedded store keeps a generated one in auth.secret beside the event store",
    )
    auth_old_secrets: SecretStr = Field(
        default=SecretStr(""),
        description="retired token secrets (comma-separated) whose tokens are still accepted "
        "until they expire: rotate by moving the current secret here and setting a new one",
    )
    session_ttl_hours: float = Field(
        default=8.0, gt=0, le=24 * 30, description="how long a workspace sign-in lasts"
    )
    signin_slow_after: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="failed sign-ins (per user or per address, in the window) after which "
        "each further attempt is answered only after signin_delay_seconds",
    )
    signin_delay_seconds: float = Field(
        default=0.5, ge=0, le=10, description="the delay of a slowed sign-in attempt"
    )
    signin_max_failures: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="failed sign-ins for one user in the window after which attempts are "
        "refused (429) until the window passes",
    )
    signin_max_failures_per_address: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="failed sign-ins from one address in the window after which its "
        "attempts are refused (429)",
    )
    signin_window_minutes: float = Field(
        default=15.0, gt=0, le=24 * 60, description="how long a failed sign-in is counted"
    )
    token_ttl_hours: float = Field(
        default=12.0, gt=0, le=24 * 90, description="how long `leadledger token` tokens last"
    )
    key_store_url: str = Field(
        default="",
        description="where the data subjects' encryption keys live, apart from the events: "
        "sqlite:///path or postgresql://...; empty: keys.sqlite beside an embedded event "
        "store, or the leadledger_subject_keys table of the PostgreSQL database",
    )

    smtp_host: str = Field(
        default="",
        description="SMTP server alerts are e-mailed through; empty: no e-mail is sent",
    )
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP port (default 465 with smtp_ssl, else 587 with smtp_starttls, else 25)",
    )
    smtp_username: str = Field(default="", description="SMTP login; empty: no login")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password")
    smtp_from: str = Field(
        default="leadledger@localhost",
        description="the From address of alert e-mails (its domain names their Message-IDs)",
    )
    smtp_starttls: bool = Field(
        default=False, description="upgrade the SMTP connection with STARTTLS before login"
    )
    smtp_ssl: bool = Field(default=False, description="connect to the SMTP server over TLS")
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="how long one SMTP exchange may take"
    )
    mail_language: Literal["ru", "en"] = Field(
        default="ru", description="the language of alert e-mails"
    )
    mailer: bool = Field(
        default=True,
        description="run the mailer inside the server when an SMTP server is configured; set "
        "false where `leadledger mail` runs it on its own",
    )
    mail_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often the mailer looks for new alerts"
    )
    mail_max_backoff_seconds: float = Field(
        default=300.0,
        gt=0,
        description="the longest wait between retries while the SMTP server is down or "
        "refuses temporarily (the wait doubles from mail_poll_seconds up to this)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s]+$",
        description="where people open the workspace: the links in alert e-mails start here",
    )

    @property
    def sends_mail(self) -> bool:
        """Whether alerts are e-mailed (an SMTP server is configured)."""
        return bool(self.smtp_host.strip())

    @property
    def publishes_in_process(self) -> bool:
        """Whether ``serve`` runs the relay itself."""
        return bool(self.kafka_bootstrap_servers) and self.relay

    @field_validator("event_store_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

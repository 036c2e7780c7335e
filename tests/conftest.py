"""Shared fixtures: a fake clock, event stores on SQLite and the real PostgreSQL, platforms.

PostgreSQL is reached at LEADLEDGER_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test); each test gets its own schema, dropped after.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
import types
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from aggregates.users import Principal, Role
from event_store import EventStore, open_event_store
from leadledger.settings import Settings
from leadledger.tokens import Signer
from leadledger.wiring import Platform, build, event_codec
from read_api.app import create_app
from tests.kafka_broker import Broker, free_port


def _share_route_analysis() -> None:
    """Let every app of the session share FastAPI's analysis of an endpoint's parameters.

    The tests build an app per test; FastAPI analyses each route's signature (its
    parameters' pydantic adapters) again for every app, on the app's first request, which
    took most of a short test's time. The analysis depends only on the endpoint function,
    the path and the dependency's options, so it is kept per function (weakly: an app's
    closures go with it) and each route gets a copy of its own (FastAPI inserts the route's
    dependencies into it). Without those internals (another FastAPI), nothing changes."""
    from fastapi import routing as fastapi_routing
    from fastapi.dependencies import models as fastapi_models
    from fastapi.dependencies import utils as fastapi_utils

    analyse: Callable[..., Any] | None = getattr(fastapi_utils, "get_dependant", None)
    dependant_class = getattr(fastapi_models, "Dependant", None)
    if getattr(fastapi_routing, "get_dependant", None) is not analyse or analyse is None:
        return
    original: Callable[..., Any] = analyse
    if dependant_class is None or not dataclasses.is_dataclass(dependant_class):
        return
    lists = [f.name for f in dataclasses.fields(dependant_class) if f.name.endswith("_params")]
    analysed: weakref.WeakKeyDictionary[Callable[..., Any], dict[Any, Any]]
    analysed = weakref.WeakKeyDictionary()

    def copied(dependant: Any) -> Any:
        return dataclasses.replace(
            dependant,
            dependencies=[copied(d) for d in dependant.dependencies],
            **{name: list(getattr(dependant, name)) for name in lists},
        )

    def get_dependant(*, call: Callable[..., Any], **options: Any) -> Any:
        if not isinstance(call, types.FunctionType):
            return original(call=call, **options)
        try:
            key = tuple(
                sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items())
            )
            hash(key)
        except TypeError:
            return original(call=call, **options)
        per_call = analysed.setdefault(call, {})
        if key not in per_call:
            per_call[key] = original(call=call, **options)
        return copied(per_call[key])

    setattr(fastapi_utils, "get_dependant", get_dependant)  # noqa: B010 - FastAPI's own names
    setattr(fastapi_routing, "get_dependant", get_dependant)  # noqa: B010


_share_route_analysis()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze the heap once the tests are collected: the modules, the tests and their
    strategies stay out of the collector's sight, and every app's start (which freezes
    the heap unless it is frozen already) no longer collects the whole heap again."""
    gc.collect()
    gc.freeze()


POSTGRES_URL = os.environ.get(
    "LEADLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


class FakeClock:
    """A clock tests move by hand; every call returns the current fake instant."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL event store URL on a fresh schema of its own."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An event store URL on each back-end in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.sqlite"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    s = open_event_store(store_url, event_codec())
    yield s
    s.close()


PlatformFactory = Callable[..., Platform]


@pytest.fixture
def make_platform(tmp_path: Path, clock: FakeClock) -> Iterator[PlatformFactory]:
    """Build platforms on SQLite (default) or a given event store URL; closed after the test."""
    built: list[Platform] = []

    def factory(event_store_url: str | None = None, **settings: object) -> Platform:
        n = len(built)
        settings.setdefault("auth_secret", TEST_AUTH_SECRET)
        s = Settings(
            event_store_url=event_store_url or f"sqlite:///{tmp_path}/events{n}.sqlite",
            duckdb_path=tmp_path / f"read_models{n}.duckdb",
            **settings,  # type: ignore[arg-type]
        )
        platform = build(s, clock=clock)
        built.append(platform)
        return platform

    yield factory
    for platform in built:
        platform.close()


@pytest.fixture
def platform(make_platform: PlatformFactory) -> Platform:
    return make_platform()


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    app = create_app(platform, close_on_exit=False)
    with TestClient(app, headers=ACTOR) as c:
        yield c


TEST_AUTH_SECRET = "leadledger-test-secret-0123456789abcdef"
SIGNER = Signer(TEST_AUTH_SECRET.encode())
TOKEN_ISSUED = datetime(2020, 1, 1, tzinfo=UTC)


def token(
    user: str,
    role: str = "top",
    department: str | None = None,
    region: str | None = None,
    *,
    issued: datetime = TOKEN_ISSUED,
    ttl: timedelta = timedelta(days=365 * 200),
) -> str:
    """A bearer token the test platforms accept (long-lived unless told otherwise)."""
    return SIGNER.issue(Principal(user, Role(role), department, region), now=issued, ttl=ttl)


def bearer(user: str, role: str = "top", department: str | None = None) -> dict[str, str]:
    """Request headers authenticating as ``user`` in ``role``."""
    return {"Authorization": f"Bearer {token(user, role, department)}"}


ACTOR = bearer("anna.sales")
"""Top management: may do and see everything (the behaviour tests act as them)."""


def iso(moment: datetime) -> str:
    """An instant as the API writes it: UTC, with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def create(client: TestClient, **overrides: Any) -> dict[str, Any]:
    """POST /leads with a valid body (fields overridable); the 201 answer."""
    response = client.post("/leads", json=new_lead_body(**overrides), headers=ACTOR)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def new_lead_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "funnel": "out_of_court",
        "title": "Appraisal of a warehouse",
        "company_name": "Northwind LLC",
        "source": "website",
        "manager": "boris",
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The real Kafka-compatible broker (Tansu, in memory), shared by the session's tests.
    Tests keep apart by topic prefix (``topic_prefix``)."""
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    yield broker
    broker.close()


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own whose log survives ``stop()`` and ``start()``."""
    broker = Broker(tmp_path, durable=True)
    yield broker
    broker.close()


@contextmanager
def serving(platform: Platform, *, background: bool = True) -> Iterator[int]:
    """The platform's API served by uvicorn on a real port, in a thread (raw sockets and
    Server-Sent Events need a real HTTP server); yields the port."""
    port = free_port()
    app = create_app(platform, background=background, close_on_exit=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


# --- the workspace in a real browser (shared by tests/test_workspace_*_browser.py) --------

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
"""Where the browser tests leave their screenshots (look at them)."""


@contextmanager
def served_site(
    folder: Path,
    clock: FakeClock | None = None,
    before: Callable[[Platform], object] | None = None,
) -> Iterator[tuple[Platform, str]]:
    """A platform on the embedded store and a DuckDB file in ``folder``, served on a real
    port (the browser's server); yields it and its base URL. ``before`` fills the store
    before the server (and its process managers) starts. Skipped without Chromium."""
    if not CHROMIUM.exists():
        pytest.skip("no system Chromium at /usr/bin/chromium (apt-get install chromium)")
    settings = Settings(
        event_store_url=f"sqlite:///{folder}/events.sqlite",
        duckdb_path=folder / "read_models.duckdb",
        auth_secret=TEST_AUTH_SECRET,  # type: ignore[arg-type]
        signin_delay_seconds=0.05,
    )
    platform: Platform = build(settings, clock=clock or FakeClock())
    try:
        if before is not None:
            before(platform)
        with serving(platform) as port:
            yield platform, f"http://127.0.0.1:{port}"
    finally:
        platform.close()


def caught_up(api: Any, attempts: int = 500) -> None:
    """Wait until the read models have every event (``/health``'s lag is 0)."""
    for _ in range(attempts):
        if api.get("/health").json()["lag"] == 0:
            return
        time.sleep(0.02)
    raise AssertionError("the read models did not catch up")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system's Chromium driven by Playwright, one per test module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no system Chromium at /usr/bin/chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


def browser_page(browser: Any, base: str, locale: str = "en-US", width: int = 1400) -> Any:
    """A new page in a context of its own (its own cookies) on ``base``."""
    context = browser.new_context(
        base_url=base, locale=locale, viewport={"width": width, "height": 900}
    )
    return context.new_page()


def screenshot(page: Any, name: str) -> None:
    """The whole page as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def browser_sign_in(page: Any, user: str, password: str) -> None:
    """Sign in through the workspace's form and land on the home page."""
    page.goto("/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("#sign-in button[type=submit]")

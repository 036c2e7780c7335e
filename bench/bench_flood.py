"""A flood of mixed requests against a real LeadLedger server: no 5xx, the chain verifies.

The server is ``leadledger serve``'s app (``bench/serve_app.py:leadledger_app``: the API
with its projector in the same process) under uvicorn in a subprocess, on the embedded
default stores: an SQLite event store and a DuckDB file in a temporary folder.

T threads (default 32) each act as one real user holding a signed token: managers on
their own leads, heads of the sales department on their managers' leads, top management
on anyone's. Together they send N requests (default 10,000), each thread its share,
picked at random (fixed seed) from: lead creations, stage moves and card edits with
If-Match, reads of a lead (with ``min_position`` of its last write) and its history,
lists of leads and deals, the funnel report, event-feed pages, bodies the API must refuse
(422), and commands on another manager's lead (404: what they may not see does not
exist). Every request has the statuses it may get; the script prints requests by status
class, latency percentiles per kind and the throughput, then checks the hash chain twice
(``GET /audit/verify`` on the running server, ``leadledger verify`` after it stopped).

Exit status 1 on any 5xx, on any status a request was not expected to get, on a transport
error, or when the chain does not verify.

    .venv/bin/python -m bench.bench_flood                       # 10,000 requests, 32 threads
    .venv/bin/python -m bench.bench_flood --requests 1000 --threads 8   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx

from aggregates.users import Principal, Role
from bench import benchlib
from bench.bench_commands_http import BENCH_AUTH_SECRET, HOST, ROOT, uvicorn_server
from leadledger.tokens import Signer

FUNNEL = "out_of_court"
MOVES = ("assessment", "proposal_preparation")
"""The stages a lead is moved through, in order, by its own thread (no rule refuses them
before a qualification)."""
HEADS = 4
TOPS = 4
DEPARTMENT = "sales"

KINDS: dict[str, int] = {
    "create": 16,
    "move": 12,
    "card": 12,
    "read": 10,
    "history": 8,
    "list_leads": 8,
    "list_deals": 5,
    "report": 6,
    "feed": 10,
    "invalid": 8,
    "foreign": 5,
}
"""Weights of the request kinds in the mix."""


@dataclass
class Sample:
    kind: str
    status: int
    seconds: float
    expected: bool


@dataclass
class LeadState:
    lead_id: str
    version: int
    position: int
    moves: int = 0


@dataclass
class Shared:
    """What threads learn of each other: the leads of every manager."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    leads: dict[str, list[str]] = field(default_factory=dict)

    def add(self, manager: str, lead_id: str) -> None:
        with self.lock:
            self.leads.setdefault(manager, []).append(lead_id)

    def someone_elses(self, rng: random.Random, me: str) -> str | None:
        with self.lock:
            others = [m for m, ids in self.leads.items() if m != me and ids]
            if not others:
                return None
            return rng.choice(self.leads[rng.choice(sorted(others))])


@dataclass
class User:
    name: str
    role: Role
    department: str | None
    headers: dict[str, str]
    managers: list[str]
    """Whom this user may name as a lead's manager."""


def _token(signer: Signer, principal: Principal) -> dict[str, str]:
    issued = datetime.now(UTC)
    raw = signer.issue(principal, now=issued, ttl=timedelta(hours=6))
    return {"Authorization": f"Bearer {raw}"}


def _users(threads: int, signer: Signer) -> list[User]:
    managers = [f"flood.manager{i:02d}" for i in range(max(1, threads - HEADS - TOPS))]
    users: list[User] = []
    for i in range(threads):
        if i < len(managers):
            name = managers[i]
            principal = Principal(name, Role.MANAGER, DEPARTMENT)
            users.append(User(name, Role.MANAGER, DEPARTMENT, _token(signer, principal), [name]))
        elif i < len(managers) + HEADS:
            name = f"flood.head{i:02d}"
            principal = Principal(name, Role.HEAD, DEPARTMENT)
            users.append(User(name, Role.HEAD, DEPARTMENT, _token(signer, principal), managers))
        else:
            name = f"flood.top{i:02d}"
            principal = Principal(name, Role.TOP)
            users.append(User(name, Role.TOP, None, _token(signer, principal), managers))
    return users


def _lead_body(rng: random.Random, manager: str) -> dict[str, Any]:
    return {
        "funnel": FUNNEL,
        "title": f"Flood lead {rng.randrange(10**6)}",
        "company_name": f"Company {rng.randrange(2000)}",
        "company_id": f"INN{7700000000 + rng.randrange(2000)}",
        "source": "phone",
        "manager": manager,
        "amount": f"{rng.randrange(10_000, 900_000)}.00",
    }


INVALID: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/leads", {"funnel": FUNNEL, "title": "x", "company_name": "y", "source": "phone"}),
    ("POST", "/leads", {**{"funnel": "nowhere", "title": "x", "company_name": "y"}}),
    ("POST", "/leads/{own}/stage", {"stage": "no-such-stage"}),
    ("POST", "/leads/{own}/card", {"amount": "-1"}),
    ("POST", "/leads/{own}/pause", {}),
]
"""Bodies the API must refuse with a 422 (a missing manager, an unknown funnel or stage,
a negative amount, a pause without a reason)."""


class Flood:
    def __init__(self, port: int, args: argparse.Namespace, users: list[User]) -> None:
        self.base = f"http://{HOST}:{port}"
        self.args = args
        self.users = users
        self.shared = Shared()
        self.samples: list[list[Sample]] = [[] for _ in users]
        self.errors: list[str] = []
        self.feed_head = 0

    def _call(
        self,
        client: httpx.Client,
        out: list[Sample],
        kind: str,
        expected: set[int],
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            self.errors.append(f"{kind} {method} {path}: {type(error).__name__}: {error}")
            out.append(Sample(kind, 0, time.perf_counter() - started, False))
            return None
        seconds = time.perf_counter() - started
        good = response.status_code in expected
        out.append(Sample(kind, response.status_code, seconds, good))
        if not good and len(self.errors) < 50:
            self.errors.append(
                f"{kind} {method} {path} -> {response.status_code} "
                f"(expected {sorted(expected)}): {response.text[:300]}"
            )
        return response

    def worker(self, index: int, count: int) -> None:
        user = self.users[index]
        rng = random.Random(self.args.seed * 1000 + index)
        out = self.samples[index]
        mine: list[LeadState] = []
        kinds = list(KINDS)
        weights = [KINDS[k] for k in kinds]
        feed_after = 0
        with httpx.Client(base_url=self.base, headers=user.headers, timeout=60) as client:
            done = 0
            while done < count:
                kind = rng.choices(kinds, weights)[0]
                if not mine and kind in ("move", "card", "read", "history", "invalid"):
                    kind = "create"
                done += 1
                if kind == "create":
                    manager = rng.choice(user.managers)
                    r = self._call(
                        client, out, kind, {201}, "POST", "/leads", _lead_body(rng, manager)
                    )
                    if r is not None and r.status_code == 201:
                        data = r.json()
                        mine.append(LeadState(data["lead_id"], data["version"], data["position"]))
                        self.shared.add(manager, data["lead_id"])
                    continue
                if kind in ("move", "card"):
                    lead = rng.choice(mine)
                    if kind == "move" and lead.moves < len(MOVES):
                        path, body = f"/leads/{lead.lead_id}/stage", {"stage": MOVES[lead.moves]}
                    else:
                        kind = "card"
                        path = f"/leads/{lead.lead_id}/card"
                        body = {"description": f"call #{rng.randrange(10**6)}"}
                    r = self._call(
                        client,
                        out,
                        kind,
                        {200},
                        "POST",
                        path,
                        body,
                        {"If-Match": f'"{lead.version}"'},
                    )
                    if r is not None and r.status_code == 200:
                        data = r.json()
                        lead.version, lead.position = data["version"], data["position"]
                        if kind == "move":
                            lead.moves += 1
                    continue
                if kind == "read":
                    lead = rng.choice(mine)
                    path = f"/leads/{lead.lead_id}?min_position={lead.position}"
                    self._call(client, out, kind, {200}, "GET", path)
                elif kind == "history":
                    lead = rng.choice(mine)
                    self._call(client, out, kind, {200}, "GET", f"/leads/{lead.lead_id}/history")
                elif kind == "list_leads":
                    self._call(client, out, kind, {200}, "GET", "/leads?limit=20")
                elif kind == "list_deals":
                    self._call(client, out, kind, {200}, "GET", "/deals?limit=20")
                elif kind == "report":
                    self._call(client, out, kind, {200}, "GET", f"/reports/funnel?funnel={FUNNEL}")
                elif kind == "feed":
                    r = self._call(
                        client, out, kind, {200}, "GET", f"/events?after={feed_after}&limit=100"
                    )
                    if r is not None and r.status_code == 200:
                        feed_after = r.json()["next_after"]
                elif kind == "invalid":
                    method, template, body = rng.choice(INVALID)
                    path = template.format(own=rng.choice(mine).lead_id)
                    self._call(client, out, kind, {422}, method, path, body)
                elif kind == "foreign":
                    other = (
                        self.shared.someone_elses(rng, user.name)
                        if user.role is Role.MANAGER
                        else None
                    )
                    # a manager on another's lead, or anyone on an unknown one: 404 alike
                    target = other or str(uuid4())
                    body = {"reason": "not mine"}
                    self._call(client, out, kind, {404}, "POST", f"/leads/{target}/pause", body)


def _register(base: str, signer: Signer, users: list[User]) -> None:
    """The directory: managers and heads in the sales department (a head's read scope
    and the people they may name come from it)."""
    admin = _token(signer, Principal("flood.admin", Role.ADMIN))
    with httpx.Client(base_url=base, headers=admin, timeout=60) as client:
        for user in users:
            if user.role is Role.TOP:
                continue
            body = {
                "username": user.name,
                "name": user.name,
                "role": user.role.value,
                "department": DEPARTMENT,
            }
            response = client.post("/users", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"registering {user.name}: {response.text}")


def _report(samples: list[Sample], wall: float) -> tuple[str, int, int]:
    by_class = Counter(f"{s.status // 100}xx" if s.status else "transport error" for s in samples)
    fives = sum(1 for s in samples if 500 <= s.status < 600)
    unexpected = sum(1 for s in samples if not s.expected)
    rows: list[list[Any]] = []
    for kind in KINDS:
        mine = [s for s in samples if s.kind == kind]
        if not mine:
            continue
        statuses = Counter(s.status for s in mine)
        rows.append(
            [
                kind,
                len(mine),
                " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
                benchlib.ms(benchlib.percentile([s.seconds for s in mine], 50)),
                benchlib.ms(benchlib.percentile([s.seconds for s in mine], 99)),
                sum(1 for s in mine if not s.expected),
            ]
        )
    everything = [s.seconds for s in samples]
    rows.append(
        [
            "all",
            len(samples),
            " ".join(f"{k}:{v}" for k, v in sorted(by_class.items())),
            benchlib.ms(benchlib.percentile(everything, 50)),
            benchlib.ms(benchlib.percentile(everything, 99)),
            unexpected,
        ]
    )
    text = benchlib.table(
        "Requests by kind",
        ["kind", "requests", "statuses", "p50 ms", "p99 ms", "unexpected"],
        rows,
    )
    text += "\n" + benchlib.table(
        "Totals",
        ["2xx", "4xx", "5xx", "transport errors", "wall s", "requests/s"],
        [
            [
                by_class.get("2xx", 0),
                by_class.get("4xx", 0),
                by_class.get("5xx", 0),
                by_class.get("transport error", 0),
                f"{wall:.1f}",
                f"{len(samples) / wall:.1f}",
            ]
        ],
    )
    return text, fives, unexpected


def _cli_verify(env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "leadledger.cli", "verify"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=10_000, help="requests in all")
    parser.add_argument(
        "--threads", type=int, default=32, help=f"threads (users), at least {HEADS + TOPS + 1}"
    )
    parser.add_argument("--seed", type=int, default=12, help="random seed")
    args = parser.parse_args(argv)
    if args.threads < HEADS + TOPS + 1:
        parser.error(f"--threads must be at least {HEADS + TOPS + 1}")
    print(
        f"bench_flood: requests={args.requests:,} threads={args.threads} seed={args.seed}",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench_flood_"))
    env = {
        "LEADLEDGER_AUTH_SECRET": BENCH_AUTH_SECRET,
        "LEADLEDGER_EVENT_STORE_URL": f"sqlite:///{workdir}/events.sqlite",
        "LEADLEDGER_DUCKDB_PATH": str(workdir / "read_models.duckdb"),
    }
    signer = Signer(BENCH_AUTH_SECRET.encode())
    users = _users(args.threads, signer)
    failed = False
    try:
        with uvicorn_server("leadledger_app", env, workdir / "uvicorn.log") as (port, _pid):
            base = f"http://{HOST}:{port}"
            _register(base, signer, users)
            flood = Flood(port, args, users)
            share, extra = divmod(args.requests, args.threads)
            threads = [
                threading.Thread(
                    target=flood.worker, args=(i, share + (1 if i < extra else 0)), daemon=True
                )
                for i in range(args.threads)
            ]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
            samples = [s for per_thread in flood.samples for s in per_thread]
            text, fives, unexpected = _report(samples, wall)
            print(text, flush=True)
            for line in flood.errors[:10]:
                print(f"  unexpected: {line}", flush=True)
            if fives or unexpected or len(samples) != args.requests:
                failed = True
            top = next(u for u in users if u.role is Role.TOP)
            with httpx.Client(base_url=base, headers=top.headers, timeout=600) as client:
                started = time.perf_counter()
                checked = client.get("/audit/verify")
                took = time.perf_counter() - started
            verdict = checked.json() if checked.status_code in (200, 409) else checked.text
            print(f"GET /audit/verify -> {checked.status_code} in {took:.2f}s: {verdict}")
            if checked.status_code != 200 or not checked.json().get("ok"):
                failed = True
        code, said = _cli_verify(env)
        print(f"leadledger verify (server stopped) -> exit {code}: {said}")
        if code != 0:
            failed = True
        log = (workdir / "uvicorn.log").read_text(errors="replace")
        if "Traceback" in log:
            print("the server logged a traceback:\n" + log[-3000:])
            failed = True
    finally:
        benchlib.remove_tree(workdir)
    print("FAILED" if failed else "OK: no 5xx, every status as expected, the chain verifies")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast an oversize request body is refused (issue 12): a client declares a 100 MB
``Content-Length`` on ``POST /leads`` and sends nothing; the time until the 413 arrives,
over a raw socket to a real uvicorn server, with and without a bearer token. Then the
same for a chunked body streamed past the limit (the 413 arrives once it passes).

Setup: an embedded platform (SQLite + DuckDB in a temporary directory), the API on a
free local port with the default limit (1 MiB). Run from the project root:

    .venv/bin/python -m bench.bench_body_limit
    .venv/bin/python -m bench.bench_body_limit --runs 500
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from bench import benchlib
from leadledger.settings import Settings
from leadledger.wiring import build
from read_api.app import create_app


def _status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a status line")
        data += chunk
    return int(data.split(b" ", 2)[1])


def declared(host: str, port: int, headers: str) -> float:
    request = (
        f"POST /leads HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"{headers}Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(request)
        status = _status(sock)
        elapsed = time.perf_counter() - started
    assert status == 413, status
    return elapsed


def chunked(host: str, port: int, limit: int) -> float:
    head = (
        f"POST /leads HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(piece), piece)
    with socket.create_connection((host, port), timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(head)
        sent = 0
        try:
            while sent <= limit + len(piece):
                sock.sendall(frame)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status = _status(sock)
        elapsed = time.perf_counter() - started
    assert status == 413, status
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            event_store_url=f"sqlite:///{tmp}/events.sqlite",
            duckdb_path=Path(tmp) / "read_models.duckdb",
            auth_secret=SecretStr("bench-body-limit-secret-0123456789abcdef"),
            process_managers=False,
        )
        platform = build(settings)
        auth = "Authorization: " + benchlib.top_management_headers(platform)["Authorization"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = uvicorn.Config(
            create_app(platform), host="127.0.0.1", port=port, log_level="error"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            rows = [
                benchlib.latency_row(
                    "declared 100 MB, nothing sent, no token",
                    [declared("127.0.0.1", port, "") for _ in range(args.runs)],
                ),
                benchlib.latency_row(
                    "declared 100 MB, nothing sent, with a token",
                    [declared("127.0.0.1", port, auth + "\r\n") for _ in range(args.runs)],
                ),
                benchlib.latency_row(
                    "chunked, streamed past 1 MiB",
                    [chunked("127.0.0.1", port, settings.max_body_bytes) for _ in range(20)],
                ),
            ]
        finally:
            server.should_exit = True
            thread.join(10)
        print(
            benchlib.table(
                f"413 for an oversize body (limit {settings.max_body_bytes} bytes)",
                benchlib.LATENCY_HEADERS,
                rows,
            )
        )


if __name__ == "__main__":
    main()

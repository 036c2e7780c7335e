"""The C heap under Python (glibc's malloc): large events' buffers go back to the system.

Measured on a real server (tests/test_stream_server_limits.py, bench/bench_stream.py):
Python frees what a subscriber replaying large events allocated, but glibc keeps it.

By default glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB):
once a few large events have passed, their buffers come from the heaps of the threads
that read them, and fragmentation keeps those heaps from shrinking, so RSS grew with every
round of subscribers (by 30 MB and 12 MB in two rounds of 20). :func:`fix_mmap_threshold`
pins it at 128 KiB: such a block is mapped on its own and unmapped when freed; the
rounds then reuse what the first one took. (``malloc_trim`` after subscribers left gave
back 1 to 4 MB more: not worth a call.) Nothing changes where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

M_MMAP_THRESHOLD = -3
"""mallopt's parameter number (malloc.h)."""
MMAP_THRESHOLD = 128 * 1024


@functools.cache
def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def fix_mmap_threshold() -> bool:
    """Map every allocation of MMAP_THRESHOLD or more on its own; False without glibc."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))

"""Process-wide tuning for the photo commands (``process``, ``watch``).

A 12 MP photo is a 36 MB pixel buffer, and every stage (decode, detector tiles, redaction,
encoding) allocates and frees buffers of that order. glibc serves large allocations with fresh
``mmap`` calls and gives freed memory back to the system early, so the next photo page-faults
the same amount in again: on eight school-day photos that was 3.2 million page faults and a
quarter of all CPU time, spent in the kernel. Taking large blocks from the heap instead, and
returning memory only when more than ``TRIM_BYTES`` (1 GiB) sits free at the heap's top, lets
the process reuse those pages (130,000 faults, a sixth of the kernel time). The resident size
stays at its high-water mark, which is what the memory target measures anyway; one arena for
all threads keeps that mark at the peak of one photo rather than the sum of per-thread peaks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

TRIM_BYTES = 1024 * 1024 * 1024
TOP_PAD_BYTES = 64 * 1024 * 1024

_done = False


def _settings() -> list[tuple[int, int]]:
    return [
        (_M_MMAP_MAX, 0),  # large blocks from the heap, so their pages are reused
        (_M_TRIM_THRESHOLD, TRIM_BYTES),
        (_M_TOP_PAD, TOP_PAD_BYTES),
        # one arena for all threads: with one per thread (the worker and OpenCV's), each kept its
        # own high-water mark and the service peaked at 585 instead of 472 MB
        (_M_ARENA_MAX, 1),
    ]


def tune_allocator() -> bool:
    """Keep large pixel buffers on the heap (glibc only; elsewhere a no-op). Returns whether the
    settings were applied. Idempotent."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(param, value) == 1
        for param, value in _settings()
    )
    if not ok:
        log.debug("mallopt refused a setting; allocator left as it was")
        return False
    _done = True
    return True

"""fsutil.release_memory: hands freed heap back to the system where glibc offers it."""

from __future__ import annotations

import numpy as np

from photoguard import fsutil


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_release_memory_returns_freed_heap_to_the_system() -> None:
    # many mid-sized blocks (below mmap's threshold, so they live in the heap), most freed
    blocks = [np.ones(100_000, np.uint8) for _ in range(2_000)]  # ~200 MB
    keep = blocks[::50]
    del blocks
    before = _rss_kb()
    fsutil.release_memory()
    after = _rss_kb()
    assert len(keep) == 40
    assert after < before - 50_000, (before, after)  # more than 50 MB went back

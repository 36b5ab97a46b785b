"""What the JPEG damage checks and the decode deadline cost (issue 17).

Usage::

    PYTHONPATH=src .venv/bin/python bench/decode_checks.py [--runs 11]

A 12 MP JPEG (4000x3000, quality 90, gradient with noise) is made in memory, baseline, with a
restart marker after every MCU (the most a hostile file can carry), and progressive. Prints the
median time of the entropy-coded-data check (``formats.entropy_data_sound``) and of a whole
``decode_bytes`` (decode in its own thread with the deadline, grey-fill check included) next to
the same decode run in the caller's thread, and of FFmpeg's second opinion (which runs only when
the last block is exactly grey 128, as on the fourth input), as a markdown table.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, md_table
from photoguard.config import MediaConfig
from photoguard.photo import decode
from photoguard.photo.formats import entropy_data_sound, walk_jpeg


def _photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 200 // w, yy * 200 // h, (xx + yy) * 100 // (w + h) + 60], axis=-1)
    return np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    px = _photo()
    cfg = MediaConfig()
    never = threading.Event()
    rows = []
    collage = np.full_like(px, 128)
    collage[200:2600, 200:3600] = px[200:2600, 200:3600]
    cases = (
        ("baseline", px, {}),
        ("restart marker per MCU", px, {"restart_marker_blocks": 1}),
        ("progressive", px, {"progressive": True}),
        ("on a #808080 canvas (FFmpeg second opinion runs)", collage, {}),
    )
    for label, pixels, kw in cases:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=90, **kw)  # type: ignore[arg-type]
        data = buf.getvalue()
        layout = walk_jpeg(data)
        check = _median_ms(lambda: entropy_data_sound(data, layout), args.runs)  # noqa: B023
        threaded = _median_ms(lambda: decode.decode_bytes(data, cfg), args.runs)  # noqa: B023
        direct = _median_ms(lambda: decode._decode_or_reason(data, cfg, None, never), args.runs)  # noqa: B023
        second = _median_ms(lambda: decode._ffmpeg_finds_damage(data), args.runs)  # noqa: B023
        rows.append(
            (label, f"{len(data) / 1e6:.1f}", f"{check:.1f}", f"{threaded:.0f}", f"{direct:.0f}", f"{second:.0f}")
        )
    print(machine())
    header = (
        "12 MP JPEG", "MB", "entropy check ms", "decode_bytes ms (own thread)",
        "same decode, caller's thread ms", "FFmpeg second opinion ms",
    )
    print(md_table(header, rows))


if __name__ == "__main__":
    main()

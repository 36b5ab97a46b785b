"""Detection recall on widerval250/dev by face height, per detector configuration.

Each (model, long side) pass is run once per photo at a low score and cached in bench/out/;
configurations (members, scales, score thresholds) are then scored from the cache with the same
fusion code the detectors use, so many combinations cost one run. Time per photo is the sum of
the passes a configuration needs (median over photos; the machine is shared and noisy).

    PYTHONPATH=src .venv/bin/python bench/detect_recall.py [--passes cf:0,cf:1920,yn:0,...] [--limit N]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time
from collections.abc import Sequence
from typing import Any

from _common import OUT, RecallTable, covered, load_rgb, machine, md_table, wider_photos
from photoguard.config import CenterFaceConfig, YuNetConfig
from photoguard.core.records import Detection
from photoguard.photo.detect import CenterFaceDetector, YuNetDetector, fuse
from photoguard.photo.detect.base import LARGE_FACE_IMAGE_PX, scale_for
from photoguard.photo.detect.yunet import LARGE_FACE_PX

RAW_SCORE = {"cf": 0.1, "yn": 0.1}
DEFAULT_PASSES = "cf:0,cf:1024,cf:1920,yn:0,yn:1024,yn:1280,yn:1920,yn:2560"

#: name -> members: (model, score, long sides[, score for boxes >= 40 px])
CONFIGS: dict[str, list[tuple[Any, ...]]] = {
    "centerface own 0.4": [("cf", 0.4, [0])],
    "centerface 1920 0.4": [("cf", 0.4, [1920])],
    "centerface 1920 0.3": [("cf", 0.3, [1920])],
    "centerface 1920+own 0.3": [("cf", 0.3, [1920, 0])],
    "yunet own 0.5": [("yn", 0.5, [0])],
    "yunet 1920 0.5": [("yn", 0.5, [1920])],
    "yunet 1920 0.3": [("yn", 0.3, [1920])],
    "yunet 2560 0.5": [("yn", 0.5, [2560])],
    "yunet 1920+2560 0.5": [("yn", 0.5, [1920, 2560])],
    "yunet 1024+1920+2560 0.5": [("yn", 0.5, [1024, 1920, 2560])],
    "yunet 1024+1920+2560 0.3": [("yn", 0.3, [1024, 1920, 2560])],
    "cf 1920 0.3 + yn 1920 0.5": [("cf", 0.3, [1920]), ("yn", 0.5, [1920])],
    "previous default: cf 1920+own 0.3 + yn 1920 0.5": [("cf", 0.3, [1920, 0]), ("yn", 0.5, [1920])],
    "cf 1920+own 0.3 + yn 1920+2560 0.3": [("cf", 0.3, [1920, 0]), ("yn", 0.3, [1920, 2560])],
    "cf 1024 0.3 + yn 1920 0.3": [("cf", 0.3, [1024]), ("yn", 0.3, [1920])],
    "cf 1024 0.3 + yn 1024+1920 0.3": [("cf", 0.3, [1024]), ("yn", 0.3, [1024, 1920])],
    "cf 1024 0.3 + yn 1024+1920+2560 0.5": [("cf", 0.3, [1024]), ("yn", 0.5, [1024, 1920, 2560])],
    "cf 1024 0.3 + yn 1024+1920+2560 0.3": [("cf", 0.3, [1024]), ("yn", 0.3, [1024, 1920, 2560])],
    "DEFAULT: cf 1024 0.3 + yn 1024+1920+2560 0.3 (0.5 if large)": [
        ("cf", 0.3, [1024]),
        ("yn", 0.3, [1024, 1920, 2560], 0.5),
    ],
    "cf 1024 0.3 + yn 1024+2560 0.3 (0.5 if large)": [("cf", 0.3, [1024]), ("yn", 0.3, [1024, 2560], 0.5)],
    "cf 1024 0.3 + yn 1280+2560 0.3 (0.5 if large)": [("cf", 0.3, [1024]), ("yn", 0.3, [1280, 2560], 0.5)],
    "yn 1024+2560 0.3 (0.5 if large)": [("yn", 0.3, [1024, 2560], 0.5)],
    "yn 1024+1920+2560 0.3 (0.5 if large)": [("yn", 0.3, [1024, 1920, 2560], 0.5)],
    "cf 1920+1024 0.3 + yn 1024+1920+2560 0.3 (0.5 if large)": [
        ("cf", 0.3, [1920, 1024]),
        ("yn", 0.3, [1024, 1920, 2560], 0.5),
    ],
}


def run_passes(passes: Sequence[str], limit: int | None) -> dict[str, dict[str, tuple[list[Detection], float]]]:
    """pass -> photo -> (raw detections, seconds); cached in bench/out/detect_raw.pkl."""
    OUT.mkdir(parents=True, exist_ok=True)
    cache_file = OUT / "detect_raw.pkl"
    cache: dict[str, dict[str, tuple[list[Detection], float]]] = {}
    if cache_file.exists():
        cache = pickle.loads(cache_file.read_bytes())
    photos = wider_photos()[:limit]
    cf = CenterFaceDetector(CenterFaceConfig(score=RAW_SCORE["cf"]))
    yn = YuNetDetector(YuNetConfig(score=RAW_SCORE["yn"]))
    for spec in passes:
        model, ls = spec.split(":")
        det = cf if model == "cf" else yn
        done = cache.setdefault(spec, {})
        todo = [p for p in photos if p.rel not in done]
        if todo:
            print(f"running {spec} on {len(todo)} photos ...", flush=True)
        for p in todo:
            rgb = load_rgb(p.path)
            factor = 1.0 if int(ls) == 0 else int(ls) / max(rgb.shape[:2])
            det.detect_at(rgb, factor)  # warm (net per shape)
            t = time.perf_counter()
            found = det.detect_at(rgb, factor)
            done[p.rel] = (found, time.perf_counter() - t)
        cache_file.write_bytes(pickle.dumps(cache))
    return cache


def member_dets(
    cache: dict[str, dict[str, tuple[list[Detection], float]]],
    rel: str,
    model: str,
    thr: float,
    sides: Sequence[int],
    long_side: int,
    large: float = 0.0,
) -> tuple[list[Detection], float]:
    """One member's fused detections; ``large``: score needed by boxes >= LARGE_FACE_PX in the
    detector's input (the YuNet rule); ``long_side``: the photo's long side."""
    found: list[Detection] = []
    secs = 0.0
    for ls in sides:
        dets, t = cache[f"{model}:{ls}"][rel]
        f = scale_for(ls, (long_side, long_side))
        found.extend(
            d
            for d in dets
            if d.score >= thr
            and (
                d.score >= large
                or min(d.box.width, d.box.height) * f < LARGE_FACE_PX
                or min(d.box.width, d.box.height) < LARGE_FACE_IMAGE_PX
            )
        )
        secs += t
    return fuse(found, 0.4, source=model), secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", default=DEFAULT_PASSES)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    passes = args.passes.split(",")
    print(machine())
    cache = run_passes(passes, args.limit)
    photos = wider_photos()[: args.limit]
    long_sides = {p.rel: max(load_rgb(p.path).shape[:2]) for p in photos}
    rows = []
    for name, members in CONFIGS.items():
        if any(f"{m}:{ls}" not in cache for m, _, sides, *_ in members for ls in sides):
            continue
        table = RecallTable()
        times = []
        nboxes = []
        for p in photos:
            all_dets: list[Detection] = []
            secs = 0.0
            for model, thr, sides, *rest in members:
                dets, t = member_dets(cache, p.rel, model, thr, sides, long_sides[p.rel], *rest)
                all_dets.extend(dets)
                secs += t
            fused = fuse(all_dets, 0.4)
            table.add(p.faces, covered(p.faces, [d.box for d in fused]))
            times.append(secs)
            nboxes.append(len(fused) / max(1, len(p.faces)))
        rows.append([name, *table.row(), f"{statistics.median(nboxes):.2f}", f"{statistics.median(times):.2f}"])
    header = ["config", *RecallTable.header(), "boxes/labelled face", "s/photo (median)"]
    t = RecallTable()
    for p in photos:
        t.add(p.faces, [True] * len(p.faces))
    print(f"\nwiderval250/dev: {len(photos)} photos, faces per bucket {t.total}")
    print(md_table(header, rows))


if __name__ == "__main__":
    main()

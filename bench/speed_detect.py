"""Time per model stage for one 12 MP photo (4000×3000) with about 30 faces.

The photo is composed in memory by tiling WIDER FACE photos (4 × 2000×1500 tiles); nothing is
written. Stages: each detector pass, the configured ensemble, templates of the matchable faces,
redaction (solid and pixelate) and the self-check pass. Reports the median wall time over --runs
and the median process CPU time (on a shared, loaded 2-core machine CPU/2 estimates an idle wall
time for 2 threads).

    PYTHONPATH=src .venv/bin/python bench/speed_detect.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from _common import covered, load_rgb, machine, md_table, wider_photos
from photoguard.config import (
    CenterFaceConfig,
    EnsembleConfig,
    IdentifyConfig,
    RedactConfig,
    RedactMethod,
    YuNetConfig,
)
from photoguard.core.records import Box
from photoguard.photo.detect import build_detector
from photoguard.photo.identify import TemplateModel, matchable
from photoguard.photo.redact import redact, solid_fill


def compose(target_faces: int = 30) -> tuple[np.ndarray, list[Box]]:
    """A 4000×3000 photo from 4 WIDER photos (each scaled into a 2000×1500 tile)."""
    photos = [p for p in wider_photos() if 4 <= len(p.faces) <= 12]
    photos.sort(key=lambda p: p.rel)
    chosen, total = [], 0
    for p in photos:
        if len(chosen) == 4:
            break
        if total + len(p.faces) <= target_faces + 4:
            chosen.append(p)
            total += len(p.faces)
    canvas = np.zeros((3000, 4000, 3), np.uint8)
    faces: list[Box] = []
    for i, p in enumerate(chosen):
        rgb = load_rgb(p.path)
        h, w = rgb.shape[:2]
        s = min(2000 / w, 1500 / h)
        tile = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
        ox, oy = (i % 2) * 2000, (i // 2) * 1500
        canvas[oy : oy + tile.shape[0], ox : ox + tile.shape[1]] = tile
        faces += [Box(b.x1 * s + ox, b.y1 * s + oy, b.x2 * s + ox, b.y2 * s + oy) for b in p.faces]
    return canvas, faces


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    fn()  # warm: models load, nets per input shape are built
    walls, cpus, out = [], [], None
    for _ in range(runs):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(machine())
    rgb, gt = compose()
    print(
        f"composite {rgb.shape[1]}×{rgb.shape[0]}, {len(gt)} labelled faces "
        f"(heights {min(b.height for b in gt):.0f}-{max(b.height for b in gt):.0f} px)"
    )
    rows = []

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        wall, cpu, out = timed(fn, args.runs)
        rows.append([name, f"{wall:.2f}", f"{cpu:.2f}", f"{cpu / 2:.2f}"])
        print(rows[-1], flush=True)
        return out

    for label, cfg in [
        ("CenterFace 1920", CenterFaceConfig(long_sides=[1920])),
        ("CenterFace 1024", CenterFaceConfig(long_sides=[1024])),
        ("CenterFace own size (4000)", CenterFaceConfig(long_sides=[0])),
        ("YuNet 1024", YuNetConfig(long_sides=[1024])),
        ("YuNet 1920", YuNetConfig(long_sides=[1920])),
        ("YuNet 2560", YuNetConfig(long_sides=[2560])),
        ("YuNet own size (4000)", YuNetConfig(long_sides=[0])),
    ]:
        det = build_detector(cfg)
        stage(f"detect: {label}", lambda det=det: det.detect(rgb))
    ens = build_detector(EnsembleConfig())
    dets = stage("detect: default ensemble", lambda: ens.detect(rgb))
    hits = covered(gt, [d.box for d in dets])
    print(f"default ensemble found {sum(hits)}/{len(gt)} labelled faces, {len(dets)} boxes")
    boxes = [d.box for d in dets]
    big = [b for b in boxes if matchable(b, IdentifyConfig())]
    tm = TemplateModel()
    stage(f"templates ({len(big)} faces ≥ 40 px wide)", lambda: tm.templates(rgb, big))
    for method in (RedactMethod.SOLID, RedactMethod.PIXELATE):
        cfg = RedactConfig(method=method)
        stage(f"redact {method.value} ({len(boxes)} boxes)", lambda cfg=cfg: redact(rgb, boxes, cfg, seed=1))
    out = redact(rgb, boxes, RedactConfig(), seed=1)
    checker = build_detector(RedactConfig().check_detector)
    extra = stage("self-check detect (check_detector)", lambda: checker.detect(out))
    final = stage("self-check solid_fill", lambda: solid_fill(out, [d.box for d in extra], 1.4))
    from privacy_recall import protected

    safe = [protected(rgb, final, b) for b in gt]
    print(
        f"privacy on the composite (SSIM < 0.6): {sum(safe)}/{len(gt)}; left visible: heights "
        f"{sorted(int(b.height) for b, ok in zip(gt, safe, strict=True) if not ok)} px"
    )
    print(f"\n12 MP composite, {len(gt)} faces; median of {args.runs} runs")
    print(md_table(["stage", "wall s", "CPU s", "CPU/2 s"], rows))


if __name__ == "__main__":
    main()

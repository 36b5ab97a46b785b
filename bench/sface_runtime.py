"""SFace features: OpenCV's FaceRecognizerSF against onnxruntime (batch sizes), same faces.

Builds bench/pipeline_speed.py's 12 MP composite, detects its faces once with the configured
detector, keeps the matchable ones (``identify.min_face_px``) and times ``SFaceModel.templates``
for all of them with each runtime, alternating, the median over ``--runs`` (wall and CPU-s of
this process). The landmark search and alignment are timed alone as well (they are the same for
every runtime). Prints the largest difference between the runtimes' templates (must be ~1e-6).

    PYTHONPATH=src:.:bench .venv/bin/python bench/sface_runtime.py [--runs 7] [--batches 1,4,8,0]
        [--threads 2] [--spin on|off|both]

``--batches``: faces per onnxruntime run; 0 means all faces in one run.
``--memory opencv|onnxruntime``: instead, with the watch service's allocator settings, the PSS
this process gains from one SFace model computing the composite's templates 5 times (run each
runtime in its own process; ``--batches`` gives the batch size).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from photoguard.config import Settings
from photoguard.core.records import Box
from photoguard.photo.detect import build_detector
from photoguard.photo.sface import Runtime, SFaceModel, sface_session
from photoguard.service.runtime import tune_allocator
from pipeline_speed import composite


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def pss_mb() -> float:
    with open("/proc/self/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024


def memory(runtime: Runtime, batch: int, img: np.ndarray, boxes: list[Box], marks: list[Any]) -> int:
    import onnxruntime  # noqa: F401  # loaded in the service anyway (text finding)

    before = pss_mb()
    model = SFaceModel(runtime=runtime, batch=batch)
    for _ in range(5):
        model.templates(img, boxes, marks)
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    print(f"{runtime} (features by {model.runtime}), batch {batch}, {len(boxes)} faces x 5: PSS "
          f"+{pss_mb() - before:.1f} MB, total {pss_mb():.0f} MB, peak RSS {peak:.0f} MB")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--batches", default="1,4,8,0", help="onnxruntime faces per run, 0 = all")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    ap.add_argument("--spin", choices=("on", "off", "both"), default="off",
                    help="onnxruntime's idle intra-op threads spin or sleep (photoguard's default: off)")
    ap.add_argument("--memory", choices=("opencv", "onnxruntime"), default=None)
    args = ap.parse_args()
    if args.memory:
        tune_allocator()
    settings = Settings()
    img, _ = composite()
    dets = build_detector(settings.detect).detect(img)
    dets = [d for d in dets if d.box.width >= settings.identify.min_face_px]
    boxes, marks = [d.box for d in dets], [d.landmarks for d in dets]
    if args.memory:
        return memory(args.memory, int(args.batches.split(",")[0]) or len(boxes), img, boxes, marks)
    models: dict[str, SFaceModel] = {"opencv": SFaceModel(runtime="opencv")}
    spins = {"on": (True,), "off": (False,), "both": (True, False)}[args.spin]
    for spin in spins:
        factory = functools.partial(sface_session, spin=spin)
        for b in (int(x) for x in args.batches.split(",")):
            name = f"ort batch {b or 'all'}" + ("" if len(spins) == 1 else f" spin {'on' if spin else 'off'}")
            models[name] = SFaceModel(batch=b or len(boxes), threads=args.threads, session_factory=factory)
    ref = models["opencv"].templates(img, boxes, marks)  # warm-up (loads) and reference
    for name, m in models.items():
        out = m.templates(img, boxes, marks)
        assert m.runtime == ("opencv" if name == "opencv" else "onnxruntime"), (name, m.runtime)
        dev = max(float(np.abs(a - b).max()) for a, b in zip(out, ref, strict=True))
        print(f"{name:18} runtime {m.runtime}, largest template difference to OpenCV {dev:.1e}")
    sf = models["opencv"]
    align = "align only"
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in (align, *models)}
    for i in range(args.runs):
        order = list(models) if i % 2 == 0 else list(reversed(models))
        _, w, c = timed(lambda: [sf._align(img, b, p) for b, p in zip(boxes, marks, strict=True)])
        times[align].append((w, c))
        for name in order:
            _, w, c = timed(lambda m=models[name]: m.templates(img, boxes, marks))  # type: ignore[misc]
            times[name].append((w, c))
    print(f"{len(boxes)} matchable faces on the 12 MP composite; {os.cpu_count()} cores; {args.runs} runs; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, v in times.items():
        w = statistics.median(x[0] for x in v)
        c = statistics.median(x[1] for x in v)
        print(f"  {name:18} wall median {w:.3f} s (min {min(x[0] for x in v):.3f})  cpu median {c:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

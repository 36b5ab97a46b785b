"""Privacy recall THROUGH the redaction on widerval250/dev (nobody enrolled: every face must go).

A labelled face (invalid == 0) counts as protected when the SSIM between its box in the output
and in the original is below 0.6 (grayscale; window 7, or the largest odd size that fits a small
box; boxes under 3 px on a side count as protected when at least half their pixels changed).

``protect(rgb)`` = detect (configured ensemble) -> redact every face -> self-check (detect again
with the check detector, solid-fill what is found), i.e. what the pipeline does for a photo in
which nobody has consent. With --pipeline it goes through ``photoguard.photo.pipeline.Pipeline``
(``analyse`` + ``render``) on a temporary root with the default configuration.

    PYTHONPATH=src .venv/bin/python bench/privacy_recall.py [--pipeline] [--method solid|pixelate]
        [--outline head|ellipse] [--limit N] [--large-only] [--sheet PATH] [--mosaic] [--fine-scale X]

The library path hands the detections (with their landmarks) to ``redact``; ``--pipeline`` goes
through ``Pipeline.render`` with the detections too (it took boxes only before 2026-12-02).
``--large-only`` scores only the photos with a labelled face > 64 px (fast iteration). The misses
(SSIM >= 0.6, faces >= 10 px, largest first) go to a contact sheet, original | output crops
around the labelled box (green), bench/out/privacy_misses.png by default.

``--mosaic`` scores large photos instead: the dev photos, each cut to a 1024x768 window (faces
wholly inside it keep their labels), laid 4x4 into 4096x3072 (12.6 MP) mosaics, so every face
keeps its size in a photo as large as a phone's. ``--fine-scale X`` sets the ensemble's YuNet
``fine_scale`` (0 = no fine pass) for both paths.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from _common import OUT, RecallTable, WiderPhoto, load_rgb, machine, md_table, wider_photos
from photoguard.config import EnsembleConfig, RedactConfig, RedactMethod, RedactOutline, YuNetConfig
from photoguard.core.records import Box
from photoguard.photo.detect import build_detector
from photoguard.photo.redact import redact, solid_fill

THRESHOLD = 0.6
#: --mosaic: cell size and grid (4 x 4 cells of 1024 x 768 = 4096 x 3072, 12.6 MP)
CELL_W, CELL_H, GRID = 1024, 768, 4


def with_fine_scale(
    cfg: EnsembleConfig, fine_scale: float | None, trigger: float | None = None, turns: list[int] | None = None
) -> EnsembleConfig:
    """``cfg`` with every YuNet member's ``fine_scale`` (and ``fine_trigger_px``, ``turns``) set
    (None: unchanged)."""
    update: dict[str, object] = {}
    if turns is not None:
        update["turns"] = turns
    if fine_scale is not None:
        update["fine_scale"] = fine_scale
    if trigger is not None:
        update["fine_trigger_px"] = trigger
    if not update:
        return cfg
    members = [m.model_copy(update=update) if isinstance(m, YuNetConfig) else m for m in cfg.members]
    return cfg.model_copy(update={"members": members})


def mosaics(photos: list[WiderPhoto]) -> Iterator[tuple[str, np.ndarray, tuple[Box, ...]]]:
    """12.6 MP mosaics of 16 photos each, every photo cut to a CELL_W x CELL_H window around its
    faces' median height; labelled faces wholly inside the window keep their (shifted) boxes."""
    per = GRID * GRID
    for k in range(0, len(photos), per):
        canvas = np.full((GRID * CELL_H, GRID * CELL_W, 3), 128, np.uint8)
        faces: list[Box] = []
        for n, p in enumerate(photos[k : k + per]):
            rgb = load_rgb(p.path)
            h, w = rgb.shape[:2]
            ys = sorted((b.y1 + b.y2) / 2 for b in p.faces) or [h / 2]
            y0 = int(min(max(0, ys[len(ys) // 2] - CELL_H / 2), max(0, h - CELL_H)))
            x0 = max(0, (w - CELL_W) // 2)
            cut = rgb[y0 : y0 + CELL_H, x0 : x0 + CELL_W]
            ox, oy = (n % GRID) * CELL_W, (n // GRID) * CELL_H
            canvas[oy : oy + cut.shape[0], ox : ox + cut.shape[1]] = cut
            for b in p.faces:
                x1, y1, x2, y2 = b.x1 - x0, b.y1 - y0, b.x2 - x0, b.y2 - y0
                if x1 >= 0 and y1 >= 0 and x2 <= cut.shape[1] and y2 <= cut.shape[0]:
                    faces.append(Box(x1 + ox, y1 + oy, x2 + ox, y2 + oy))
        yield f"mosaic-{k // per}", canvas, tuple(faces)


def make_protect(
    method: RedactMethod,
    self_check: bool = True,
    outline: RedactOutline = RedactOutline.HEAD,
    fine_scale: float | None = None,
    trigger: float | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """The library-level equivalent of the pipeline for a photo with nobody enrolled (detections,
    landmarks included, go to ``redact``)."""
    det = build_detector(with_fine_scale(EnsembleConfig(), fine_scale, trigger))
    cfg = RedactConfig(method=method, self_check=self_check, outline=outline)
    checker = build_detector(cfg.check_detector)

    def protect(rgb: np.ndarray) -> np.ndarray:
        faces = det.detect(rgb)
        out = redact(rgb, faces, cfg, seed=len(faces))
        if cfg.self_check:
            extra = checker.detect(out)
            if extra:
                out = solid_fill(out, extra, cfg.grow, outline=outline)
        return out

    return protect


def make_pipeline_protect(
    method: RedactMethod,
    outline: RedactOutline = RedactOutline.HEAD,
    fine_scale: float | None = None,
    trigger: float | None = None,
    turns: list[int] | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    from photoguard.config import load_settings
    from photoguard.photo.pipeline import Pipeline
    from photoguard.service.setup import init_root

    root = Path(tempfile.mkdtemp(prefix="pg-bench-")) / "school"
    init_root(root)
    settings = load_settings(root)
    if settings.redact.method != method or settings.redact.outline != outline:
        redact_cfg = settings.redact.model_copy(update={"method": method, "outline": outline})
        settings = settings.model_copy(update={"redact": redact_cfg})
    if isinstance(settings.detect, EnsembleConfig):
        settings = settings.model_copy(update={"detect": with_fine_scale(settings.detect, fine_scale, trigger, turns)})
    pipe = Pipeline(root, settings)

    def protect(rgb: np.ndarray) -> np.ndarray:
        dets, _ = pipe.analyse(rgb)
        return pipe.render(rgb, dets, [])

    return protect


def ssim(orig: np.ndarray, out: np.ndarray, box: Box) -> float:
    """SSIM of the face box in output and original (grayscale; -1 when nothing to compare, and
    for boxes under 3 px 1 - the share of changed pixels, so that < 0.5 means >= 50 % changed)."""
    h, w = orig.shape[:2]
    x1, y1, x2, y2 = box.clipped(w, h).as_ints()
    if x2 <= x1 or y2 <= y1:
        return -1.0  # outside the image: nothing to protect
    a = cv2.cvtColor(orig[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(out[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY)
    side = min(a.shape)
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return 1.0 - float((a != b).mean())
    return float(structural_similarity(a, b, data_range=255, win_size=win))


def protected(orig: np.ndarray, out: np.ndarray, box: Box) -> bool:
    """The specified criterion: SSIM(face box in output, original) < 0.6 (tiny boxes: >= 50 % of
    the pixels changed)."""
    h, w = orig.shape[:2]
    x1, y1, x2, y2 = box.clipped(w, h).as_ints()
    if min(x2 - x1, y2 - y1) < 3 and x2 > x1 and y2 > y1:
        return ssim(orig, out, box) <= 0.5
    return ssim(orig, out, box) < THRESHOLD


def changed_share(orig: np.ndarray, out: np.ndarray, box: Box) -> float:
    """Share of the box's pixels that differ between output and original (1.0 outside the image)."""
    h, w = orig.shape[:2]
    x1, y1, x2, y2 = box.clipped(w, h).as_ints()
    if x2 <= x1 or y2 <= y1:
        return 1.0
    diff = np.abs(orig[y1:y2, x1:x2].astype(np.int16) - out[y1:y2, x1:x2].astype(np.int16)).max(axis=2)
    return float((diff > 0).mean())


def replaced(orig: np.ndarray, out: np.ndarray, box: Box, share: float = 0.9) -> bool:
    """Secondary criterion: at least ``share`` of the box's pixels were changed. SSIM is blind on
    smooth faces (a flat fill close to a smooth face's mean keeps SSIM high: the structure term
    of a flat patch is 1), so a fully painted-over face can score SSIM >= 0.6."""
    return changed_share(orig, out, box) >= share


@dataclass(frozen=True)
class Miss:
    rel: str
    box: Box
    ssim: float
    changed: float
    original: np.ndarray  # crop around the box (labelled box drawn in green)
    output: np.ndarray


def miss_crops(orig: np.ndarray, out: np.ndarray, box: Box, margin: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Original and output crops around ``box`` (grown by ``margin`` each side), box drawn."""
    h, w = orig.shape[:2]
    mx, my = box.width * margin, box.height * margin
    x1, y1 = max(0, int(box.x1 - mx)), max(0, int(box.y1 - my))
    x2, y2 = min(w, int(box.x2 + mx) + 1), min(h, int(box.y2 + my) + 1)
    crops = []
    for img in (orig, out):
        c = np.ascontiguousarray(img[y1:y2, x1:x2])
        cv2.rectangle(c, (int(box.x1) - x1, int(box.y1) - y1), (int(box.x2) - x1, int(box.y2) - y1), (0, 255, 0), 1)
        crops.append(c)
    return crops[0], crops[1]


def contact_sheet(misses: list[Miss], path: Path, tile_h: int = 112, columns: int = 4, most: int = 64) -> None:
    """Original | output pairs, largest faces first, ``columns`` pairs per row, captioned."""
    cells = []
    for m in sorted(misses, key=lambda m: -m.box.height)[:most]:
        pair = []
        for c in (m.original, m.output):
            scale = tile_h / c.shape[0]
            r = cv2.resize(c, (max(1, round(c.shape[1] * scale)), tile_h), interpolation=cv2.INTER_NEAREST)
            pair.append(r[:, : tile_h * 2])  # very wide crops are cut
        sep = np.full((tile_h, 3, 3), 255, np.uint8)
        body = np.concatenate([pair[0], sep, pair[1]], axis=1)
        cell = np.full((tile_h + 16, 4 * tile_h + 3, 3), 32, np.uint8)
        cell[16:, : body.shape[1]] = body
        name = m.rel.split("/")[-1].removesuffix(".jpg")[-22:]
        caption = f"{int(m.box.height)}px ssim {m.ssim:.2f} chg {m.changed:.0%} {name}"
        cv2.putText(cell, caption, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1, cv2.LINE_AA)
        cells.append(cell)
    if not cells:
        return
    while len(cells) % columns:
        cells.append(np.full_like(cells[0], 0))
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", action="store_true", help="go through photoguard.photo.pipeline")
    ap.add_argument("--method", choices=["solid", "pixelate"], default="solid")
    ap.add_argument("--no-self-check", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--outline", choices=[o.value for o in RedactOutline], default=RedactOutline.HEAD.value)
    ap.add_argument("--large-only", action="store_true", help="only photos with a labelled face > 64 px")
    ap.add_argument("--mosaic", action="store_true", help="12.6 MP mosaics of 16 photos (faces keep their size)")
    ap.add_argument("--fine-scale", type=float, default=None, help="YuNet fine_scale (0 = off; default: config)")
    ap.add_argument("--fine-trigger", type=float, default=None, help="YuNet fine_trigger_px (default: config)")
    ap.add_argument("--sheet", type=Path, default=OUT / "privacy_misses.png", help="contact sheet of the misses")
    args = ap.parse_args()
    method = RedactMethod(args.method)
    outline = RedactOutline(args.outline)
    print(machine())
    if args.pipeline:
        protect = make_pipeline_protect(method, outline, args.fine_scale, args.fine_trigger)
        label = f"pipeline (Pipeline.analyse + render), {method.value}, outline {outline.value}"
    else:
        protect = make_protect(
            method, self_check=not args.no_self_check, outline=outline, fine_scale=args.fine_scale,
            trigger=args.fine_trigger,
        )
        label = (
            f"library protect(), {method.value}, outline {outline.value}, "
            f"self-check {'off' if args.no_self_check else 'on'}"
        )
    table = RecallTable()
    either = RecallTable()
    whole = RecallTable()
    times = []
    cpu = []
    misses: list[Miss] = []
    photos = wider_photos()
    if args.large_only:
        photos = [p for p in photos if any(b.height > 64 for b in p.faces)]
    photos = photos[: args.limit]
    items = mosaics(photos) if args.mosaic else ((p.rel, load_rgb(p.path), p.faces) for p in photos)
    for rel, rgb, faces in items:
        t, c = time.perf_counter(), time.process_time()
        out = protect(rgb)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        hits = [protected(rgb, out, b) for b in faces]
        shares = [changed_share(rgb, out, b) for b in faces]
        table.add(faces, hits)
        either.add(faces, [a or s >= 0.9 for a, s in zip(hits, shares, strict=True)])
        whole.add(faces, [s >= 0.99 for s in shares])
        for b, ok, share in zip(faces, hits, shares, strict=True):
            if not ok and b.height >= 10:
                crop_o, crop_r = miss_crops(rgb, out, b)
                misses.append(Miss(rel, b, ssim(rgb, out, b), share, crop_o, crop_r))
    if args.fine_scale is not None or args.fine_trigger is not None:
        label += f", fine_scale {args.fine_scale}, fine_trigger_px {args.fine_trigger}"
    print(f"\n{label}, {len(times)} {'mosaics' if args.mosaic else 'photos'}")
    rows = [
        [f"SSIM < {THRESHOLD}", *table.row(), f"{statistics.median(times):.2f}"],
        [f"SSIM < {THRESHOLD} or >= 90 % of box pixels replaced", *either.row(), ""],
        [">= 99 % of box pixels replaced", *whole.row(), ""],
    ]
    print(md_table(["criterion", *RecallTable.header(), "s/photo (median)"], rows))
    print(f"median per {'mosaic' if args.mosaic else 'photo'}: wall {statistics.median(times):.2f} s, "
          f"CPU {statistics.median(cpu):.2f} s (this process, all threads)")
    big = [m for m in misses if m.box.height >= 24]
    print(f"faces >= 24 px with SSIM >= {THRESHOLD}: {len(big)}")
    for m in sorted(big, key=lambda m: -m.box.height)[:30]:
        blind = " — box >= 90 % replaced (SSIM blind spot)" if m.changed >= 0.9 else ""
        print(f"  {m.rel} (height {int(m.box.height)} px, SSIM {m.ssim:.2f}, changed {m.changed:.0%}){blind}")
    if args.sheet and misses:
        contact_sheet(misses, args.sheet)
        print(f"contact sheet of {min(len(misses), 64)} of {len(misses)} misses >= 10 px: {args.sheet}")


if __name__ == "__main__":
    main()

"""Whole-pipeline speed: one 12 MP photo with about 30 faces through every channel.

Builds a 4000x3000 composite from WIDER FACE validation photos in ../shared (in a temp folder,
never in the repo), processes it N times through ``Pipeline.process_path`` with the default
configuration (real models), and prints the median time per stage and in total.

``--text both`` (the default) runs every photo twice, alternating, with text finding on and off
(``text.enabled``), with a name card ("Noor ter Horst groep 5", a pupil in the registry) pasted
into the composite, and prints wall and CPU (this process) medians for both and the difference.

    .venv/bin/python bench/pipeline_speed.py [--runs 5] [--text both|on|off] [--pupils 120] [--engine sface]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from photoguard.config import InboxFolder, load_settings
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root
from school_photos import random_templates

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WIDER = SHARED / "faces" / "widerval250" / "dev"


def ground_truth() -> dict[str, list[tuple[int, int, int, int]]]:
    gt_file = next(WIDER.rglob("wider_face_val_bbx_gt.txt"))
    lines = gt_file.read_text().splitlines()
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        n = int(lines[i + 1])
        boxes = []
        for j in range(max(n, 1)):
            parts = lines[i + 2 + j].split()
            if n and parts[7] == "0":
                boxes.append((int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])))
        out[name] = boxes
        i += 2 + max(n, 1)
    return out


def composite(target_faces: int = 30) -> tuple[np.ndarray, int]:
    """Tile 2x2 WIDER photos (chosen to total about ``target_faces`` faces >= 24 px) into 12 MP."""
    gt = ground_truth()
    root = next(WIDER.rglob("wider_face_val_bbx_gt.txt")).parent
    candidates = sorted(
        (name for name, boxes in gt.items() if 4 <= sum(1 for b in boxes if b[3] >= 24) <= 12),
    )
    tiles: list[np.ndarray] = []
    faces = 0
    for name in candidates:
        path = next(root.rglob(Path(name).name), None)
        if path is None:
            continue
        tiles.append(np.asarray(Image.open(path).convert("RGB").resize((2000, 1500), Image.LANCZOS)))
        faces += sum(1 for b in gt[name] if b[3] >= 24)
        if len(tiles) == 4:
            break
    top = np.concatenate(tiles[:2], axis=1)
    bottom = np.concatenate(tiles[2:4], axis=1)
    return np.concatenate([top, bottom], axis=0), faces


def name_card(img: np.ndarray) -> np.ndarray:
    """The composite with a pupil's name card (text 110 px high, turned 6 degrees) pasted in."""
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 110)
    text = "Noor ter Horst groep 5"
    card = Image.new("RGBA", (int(font.getlength(text)) + 110, 240), (246, 242, 228, 255))
    ImageDraw.Draw(card).text((55, 55), text, font=font, fill=(25, 30, 110, 255))
    card = card.rotate(6, expand=True, resample=Image.Resampling.BICUBIC)
    photo = Image.fromarray(img)
    photo.paste(card, (1200, 1300), card)
    return np.asarray(photo)


def _gallery(pipe: Pipeline, n: int) -> None:
    """A 30-pupil consent list with random enrolled templates, so identify runs for every
    matchable face (nobody in the composite matches them)."""
    from photoguard.ledger.consent import Registry, parse_csv

    engine = pipe.settings.identify.template_engine
    rows = ["leerling_id,voornaam,achternaam,groep,nieuwsbrief,parro,gezichtsherkenning"]
    rows += [f"b{i},Kind{i},Achternaam{i},{i // 30 + 1},ja,ja,ja" for i in range(n)]
    rows += ["b-noor,Noor,ter Horst,1,nee,nee,nee"]
    Registry(pipe.store).import_pupils(parse_csv("\n".join(rows) + "\n"), source="bench")
    vault = pipe.template_vault()
    for i, v in enumerate(random_templates(n)):
        if engine == "sface":
            v = v / np.linalg.norm(v)  # sface templates are L2-normalised
        vault.add(f"b{i}", v, f"bench-{i}", engine)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--text", choices=("both", "on", "off"), default="both")
    ap.add_argument("--pupils", type=int, default=120, help="enrolled pupils (groups of 30)")
    ap.add_argument("--engine", choices=["opencv", "dlib", "sface"], default=None,
                    help="identify.template_engine (default: the configured default)")
    args = ap.parse_args()
    if not WIDER.is_dir():
        raise SystemExit(f"missing {WIDER}: run with ../shared beside the repository")
    img, faces = composite()
    img = name_card(img)
    modes = {"both": ("on", "off"), "on": ("on",), "off": ("off",)}[args.text]
    tmp = Path(tempfile.mkdtemp(prefix="pg-speed-"))
    try:
        root = tmp / "root"
        init_root(root)
        settings = load_settings(root)
        folders = [InboxFolder(folder="bench", group="1")]
        update: dict[str, object] = {"service": settings.service.model_copy(update={"folders": folders})}
        if args.engine:
            update["identify"] = settings.identify.model_copy(update={"template_engine": args.engine})
        settings = settings.model_copy(update=update)
        pipe = Pipeline(root, settings)
        off_settings = settings.model_copy(update={"text": settings.text.model_copy(update={"enabled": False})})
        pipes = {
            "on": pipe,
            "off": Pipeline(
                root, off_settings, store=pipe.store, detector=pipe.detector, templates=pipe.templates,
                checker=pipe.checker, text=pipe.text_finder,
            ),
        }
        _gallery(pipe, args.pupils)
        # warm-up: load the models once (not part of the per-photo cost in the service)
        pipe.detector.detect(img[:480, :640])
        if "on" in modes:
            pipe.text_finder.find_text(img[:480, :640])
        warm = root / "inbox" / "bench" / "warm-up.jpg"
        warm.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(warm, quality=92)
        pipes[modes[0]].process_path(warm)  # the template model and thread pools start here
        stages: dict[str, dict[str, list[float]]] = {m: {} for m in modes}
        found: list[int] = []
        matchable: list[int] = []
        covered: list[int] = []
        k = 0
        for i in range(args.runs):
            for mode in modes if i % 2 == 0 else tuple(reversed(modes)):
                k += 1
                src = root / "inbox" / "bench" / f"group_{k}.jpg"
                src.parent.mkdir(parents=True, exist_ok=True)
                noisy = img.copy()
                noisy[:16, :16] = 7 * k  # a different sha256 each run, same faces
                Image.fromarray(noisy).save(src, quality=92)
                cpu = time.process_time()
                res = pipes[mode].process_path(src)
                stages[mode].setdefault("cpu", []).append(time.process_time() - cpu)
                found.append(len(res.faces))
                matchable.append(sum(1 for f in res.faces if f.match.kind.value != "too_small"))
                if mode == "on":
                    covered.append(sum(res.text_regions.get("website", {}).values()))
                for key, v in res.timings.items():
                    stages[mode].setdefault(key, []).append(v)
        print(f"12 MP composite ({img.shape[1]}x{img.shape[0]}) with a name card, {faces} labelled faces >= 24 px, "
              f"{statistics.median(found)} detected, {statistics.median(matchable)} matchable (>= "
              f"{settings.identify.min_face_px} px); {args.pupils} enrolled pupils; engine "
              f"{settings.identify.template_engine}; {len(settings.channels)} channels; "
              f"{os.cpu_count()} cores; {args.runs} runs per mode; load average {os.getloadavg()[0]:.1f}")
        if covered:
            print(f"  text regions covered on the website, median {statistics.median(covered)}")
        for mode in modes:
            print(f" text finding {mode}:")
            for key in ("decode", "detect", "text", "identify", "redact", "encode", "publish", "total", "cpu"):
                if key in stages[mode]:
                    v = stages[mode][key]
                    print(f"  {key:9} median {statistics.median(v):.3f} s  (min {min(v):.3f})")
        if len(modes) == 2:
            for key in ("total", "cpu"):
                d = statistics.median(stages["on"][key]) - statistics.median(stages["off"][key])
                print(f" on - off, {key} median: {d:+.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

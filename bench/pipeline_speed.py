"""Whole-pipeline speed: one 12 MP photo with about 40 matchable faces through every channel.

Builds a 4000x3000 composite from WIDER FACE validation photos in ../shared (in a temp folder,
never in the repo), enrols ``--pupils`` pupils (random templates of the engine's family, in
groups of 30; the photo is dropped in a folder mapped to one of the groups, so matching is
group-first), processes it N times through ``Pipeline.process_path`` with the default
configuration (real models; ``--engine`` overrides identify.template_engine), and prints the
median wall time per stage and in total, and the median CPU time of the process per photo (all
threads; a loaded machine stretches wall time, CPU time much less).

    .venv/bin/python bench/pipeline_speed.py [--runs 5] [--pupils 120] [--engine sface]
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
from PIL import Image

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


def _gallery(pipe: Pipeline, n: int) -> None:
    """``n`` pupils in groups of 30 ("1", "2", ...) with random enrolled templates of the
    configured engine's family, so identify runs for every matchable face (nobody in the
    composite matches them)."""
    from photoguard.ledger.consent import Registry, parse_csv
    from photoguard.ledger.templates import TemplateVault

    engine = pipe.settings.identify.template_engine
    rows = ["leerling_id,voornaam,achternaam,groep,nieuwsbrief,parro,gezichtsherkenning"]
    rows += [f"b{i},Kind{i},Achternaam{i},{i // 30 + 1},ja,ja,ja" for i in range(n)]
    Registry(pipe.store).import_pupils(parse_csv("\n".join(rows) + "\n"), source="bench")
    vault = TemplateVault(pipe.store, pipe._master)
    for i, v in enumerate(random_templates(n)):
        if engine == "sface":
            v = v / np.linalg.norm(v)  # sface templates are L2-normalised
        vault.add(f"b{i}", v, f"bench-{i}", engine)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pupils", type=int, default=120, help="enrolled pupils (groups of 30)")
    ap.add_argument("--engine", choices=["opencv", "dlib", "sface"], default=None,
                    help="identify.template_engine (default: the configured default)")
    args = ap.parse_args()
    if not WIDER.is_dir():
        raise SystemExit(f"missing {WIDER}: run with ../shared beside the repository")
    img, faces = composite()
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
        _gallery(pipe, args.pupils)
        # warm-up: load the models once (not part of the per-photo cost in the service)
        pipe.detector.detect(img[:480, :640])
        pipe.templates.warm_up()
        stages: dict[str, list[float]] = {}
        cpu: list[float] = []
        found: list[int] = []
        matchable: list[int] = []
        for i in range(args.runs):
            src = root / "inbox" / "bench" / f"group_{i}.jpg"
            src.parent.mkdir(parents=True, exist_ok=True)
            noisy = img.copy()
            noisy[:16, :16] = 10 * i  # a different sha256 each run, same faces
            Image.fromarray(noisy).save(src, quality=92)
            c0 = time.process_time()
            res = pipe.process_path(src)
            cpu.append(time.process_time() - c0)
            found.append(len(res.faces))
            matchable.append(sum(1 for f in res.faces if f.match.kind.value != "too_small"))
            for k, v in res.timings.items():
                stages.setdefault(k, []).append(v)
        print(f"12 MP composite ({img.shape[1]}x{img.shape[0]}), {faces} labelled faces >= 24 px, "
              f"{statistics.median(found)} detected, {statistics.median(matchable)} matchable (>= "
              f"{settings.identify.min_face_px} px); {args.pupils} enrolled pupils; engine "
              f"{settings.identify.template_engine} ({pipe.templates.engine}); {len(settings.channels)} channels; "
              f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; {args.runs} runs")
        for k in ("decode", "detect", "identify", "redact", "encode", "publish", "total"):
            if k in stages:
                print(f"  {k:9} median {statistics.median(stages[k]):.3f} s  (min {min(stages[k]):.3f})")
        print(f"  {'CPU':9} median {statistics.median(cpu):.3f} s  (min {min(cpu):.3f}) process time per photo")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

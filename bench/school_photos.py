"""12 MP "school day" photos and a real consent gallery for the speed benchmarks.

A teacher's phone photo of a class activity shows a few children close by, some others further
away, and often a parent or a colleague. The crowd composites of ``watch_bench.py --scene crowd``
(four WIDER crowd photos tiled, ~136 faces) are a worst case; these scenes are the common case:

* background: one WIDER FACE validation photo with 1-8 labelled faces (families, couples, groups,
  interviews), scaled to cover 4000x3000 (its faces become 40-400 px: bystanders);
* 2-4 LFW portraits (250 px, faces ~110 px) scaled to 500-800 px and pasted at random places:
  the "pupils" in front. Eight of the 12 LFW people used are enrolled (two photos each, through
  the real enrolment path) with mixed consent per channel; the other four are strangers.

Everything is written into a temporary folder given by the caller, never into the repository.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "faces"
WIDER = SHARED / "widerval250" / "dev"
LFW = SHARED / "lfw60x5" / "dev"
SIZE = (4000, 3000)
#: channel consent columns of the consent CSV, in the default channel order
CONSENT_COLUMNS = ("nieuwsbrief", "parro", "schoolgids", "website", "social_media")


def require_data() -> None:
    if not WIDER.is_dir() or not LFW.is_dir():
        raise SystemExit(f"data missing under {SHARED} (../shared must sit beside the repository)")


def _wider_backgrounds(max_faces: int = 8) -> list[Path]:
    gt_file = next(WIDER.rglob("wider_face_val_bbx_gt.txt"))
    lines = gt_file.read_text().splitlines()
    images = {p.name: p for p in WIDER.rglob("*.jpg")}
    out: list[Path] = []
    i = 0
    while i < len(lines):
        name, n = lines[i].strip(), int(lines[i + 1])
        if 1 <= n <= max_faces and Path(name).name in images:
            out.append(images[Path(name).name])
        i += 2 + max(n, 1)
    return sorted(out)


def lfw_people() -> list[tuple[str, list[Path]]]:
    people = sorted(p for p in LFW.iterdir() if p.is_dir())
    return [(p.name, sorted(p.glob("*.jpg"))) for p in people]


def gallery_split() -> tuple[list[tuple[str, list[Path]]], list[tuple[str, list[Path]]]]:
    """(enrolled pupils, strangers) among the first 12 LFW people."""
    people = lfw_people()[:12]
    return people[:8], people[8:]


def consent_csv(n_random: int = 22, seed: int = 5) -> str:
    """A consent list: the 8 LFW "pupils" (mixed channel consent, face matching yes) and
    ``n_random`` more pupils (enrolled with random templates by the caller)."""
    rng = random.Random(seed)
    enrolled, _ = gallery_split()
    rows = ["leerling_id,voornaam,achternaam,groep," + ",".join(CONSENT_COLUMNS) + ",gezichtsherkenning"]
    for i, (_name, _photos) in enumerate(enrolled):
        # internal channels mostly yes, public ones mostly no: several distinct renders per photo
        yes = [rng.random() < p for p in (0.9, 0.9, 0.8, 0.5, 0.3)]
        rows.append(f"p{i},Kind{i},Achternaam{i},5," + ",".join("ja" if y else "nee" for y in yes) + ",ja")
    for j in range(n_random):
        rows.append(f"r{j},Extra{j},Familie{j},5," + ",".join(["ja"] * 5) + ",ja")
    return "\n".join(rows) + "\n"


def enrol_folder(folder: Path) -> Path:
    """``folder/<pupil_id>/*.jpg`` with two LFW photos per enrolled pupil (for ``photoguard enrol``)."""
    enrolled, _ = gallery_split()
    for i, (_name, photos) in enumerate(enrolled):
        sub = folder / f"p{i}"
        sub.mkdir(parents=True, exist_ok=True)
        for k, p in enumerate(photos[:2]):
            (sub / f"{k}.jpg").write_bytes(p.read_bytes())
    return folder


def scene(rng: random.Random, backgrounds: list[Path]) -> Image.Image:
    """One 12 MP school-day photo (see the module doc)."""
    with Image.open(rng.choice(backgrounds)) as bg:
        bg = bg.convert("RGB")
        scale = max(SIZE[0] / bg.width, SIZE[1] / bg.height)
        big = bg.resize((round(bg.width * scale) + 1, round(bg.height * scale) + 1), Image.BILINEAR)
    left = rng.randrange(0, big.width - SIZE[0] + 1)
    top = rng.randrange(0, big.height - SIZE[1] + 1)
    canvas = big.crop((left, top, left + SIZE[0], top + SIZE[1]))
    enrolled, strangers = gallery_split()
    people = enrolled + strangers
    n = rng.randint(2, 4)
    slot_w = SIZE[0] // n
    for k, (_name, photos) in enumerate(rng.sample(people, n)):
        with Image.open(rng.choice(photos[2:])) as face:
            side = rng.randint(500, 800)
            tile = face.convert("RGB").resize((side, side), Image.BICUBIC)
        x = k * slot_w + rng.randrange(0, max(1, slot_w - side))
        y = rng.randrange(SIZE[1] // 4, SIZE[1] - side)
        canvas.paste(tile, (min(x, SIZE[0] - side), y))
    return canvas


def make_school_photos(folder: Path, n: int, seed: int = 11) -> list[Path]:
    require_data()
    rng = random.Random(seed)
    backgrounds = _wider_backgrounds()
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for i in range(n):
        p = folder / f"school_{i:04d}.jpg"
        scene(rng, backgrounds).save(p, quality=90)
        out.append(p)
    return out


def random_templates(n: int, seed: int = 0) -> list[np.ndarray]:
    """Templates for the extra pupils: random points on the sphere scaled to dlib's norm
    (~0.6), so they match nobody in the photos but make the gallery school-sized."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        v = rng.normal(size=128).astype(np.float32)
        out.append(v / np.linalg.norm(v) * 0.6)
    return out

"""Text in the image: names found, names covered, time per 12 MP photo (issue 13).

A generated set: name cards, pupils' drawings (two lines, handwriting-style fonts, crayon colours),
whiteboards (several names) and jersey-like lettering (capitals and a number), rendered with
Pillow in several fonts, sizes (text height 40-170 px) and angles (-20..20 degrees), pasted onto
WIDER FACE photos (../shared/faces/widerval250) scaled to 4000x3000. A roster of 240 pupils with
Dutch names (tussenvoegsels, double surnames, names that are ordinary words) is the registry.

Per photo, for the pupil whose surname is on it:
- found: the OCR read the surname (the policy matched it to that pupil on a closed channel);
- covered: the redaction regions cover >= 95 % of the surname's ink pixels (and the mean share);
- contact: on the public channel the address line ('Dorpsstraat 3', postcode, phone) is flagged.
Plus photos without any card: regions that would be filled on the public channel (false fills).
Time: ``find_text`` wall time per 12 MP photo (median, p90) and CPU time, models preloaded.

    PYTHONPATH=src .venv/bin/python bench/text_bench.py [--n 48] [--long-side 960] [--clean 12]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from _common import WIDER, load_rgb, machine, md_table, need
from photoguard.config import ChannelConfig, TextConfig
from photoguard.core.records import Pupil
from photoguard.core.textpolicy import TextRedaction, decide_text
from photoguard.photo.text import OnnxOcr

W, H = 4000, 3000
TODAY = date(2026, 12, 2)
PARRO = ChannelConfig(name="parro", consent="parro", public=False)
WEBSITE = ChannelConfig(name="website", consent="website", public=True)

FONT_FILES = {
    "DejaVu Sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVu Serif Bold": "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "Liberation Sans Bold": "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "Liberation Serif Italic": "/usr/share/fonts/truetype/liberation/LiberationSerif-Italic.ttf",
    "Comic Neue": "/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf",
    "Comic Neue Bold": "/usr/share/fonts/opentype/comic-neue/ComicNeue-Bold.otf",
    "Z003 (script)": "/usr/share/fonts/opentype/urw-base35/Z003-MediumItalic.otf",
}
HANDWRITING = ("Comic Neue", "Comic Neue Bold", "Z003 (script)")

FIRST = """Noor Emma Daan Sophie Mohammed Roos Lucas Julia Sem Tess Levi Mila Finn Saar Bram Zoë
Liam Yara Jesse Fenna Milan Evi Thijs Lotte Ayoub Nora Ruben Isa Gijs Femke Ilias Sara""".split()  # noqa: SIM905
SURNAMES = [
    ("ter", "Horst"), ("de", "Vries"), ("", "Bakker"), ("", "El Amrani"), ("van den", "Berg"),
    ("", "Jansen"), ("van", "Dijk"), ("", "Visser"), ("", "Smits"), ("de", "Jong"),
    ("", "Meijer"), ("van der", "Linden"), ("", "Yilmaz"), ("", "Kuipers"), ("", "Hendriks"),
    ("van", "Leeuwen"), ("", "Dekker"), ("", "Brouwer"), ("", "Mulder"), ("de", "Graaf"),
    ("", "Peeters"), ("", "Bouzid"), ("", "Wijnands"), ("van 't", "Hof"), ("", "Schouten"),
    ("", "Vermeulen"), ("", "Koç"), ("", "Maas"), ("", "Verhoeven"), ("van", "Rijn"),
]  # fmt: skip


def roster() -> list[Pupil]:
    rng = random.Random(13)
    pupils = []
    for k in range(240):
        prefix, sur = SURNAMES[k % len(SURNAMES)]
        first = FIRST[(k * 7 + k // len(SURNAMES)) % len(FIRST)]
        consents = {c: rng.random() < 0.7 for c in ("newsletter", "parro", "guide", "website", "social")}
        pupils.append(Pupil(str(3000 + k), first, prefix, sur, str(1 + k % 8), consents=consents))
    return pupils


@dataclass
class Sample:
    kind: str
    font: str
    size: int
    angle: float
    pupil: Pupil
    rgb: np.ndarray
    surname_ink: np.ndarray  # bool mask (H, W)
    has_contact: bool


def _surname_text(p: Pupil, caps: bool = False) -> str:
    s = f"{p.surname_prefix} {p.surname}".strip()
    return s.upper() if caps else s


def _lines(kind: str, p: Pupil, rng: random.Random) -> tuple[list[list[tuple[str, bool]]], bool]:
    """Lines as (piece, is_surname) segments, and whether a contact detail is on it."""
    sur = _surname_text(p)
    if kind == "card":
        return [[(p.first_name + " ", False), (sur, True), (f" groep {p.group}", False)]], False
    if kind == "drawing":
        street = rng.choice(["Dorpsstraat 3", "Kerkweg 12", "Molenlaan 7b", "1234 AB Ons Dorp"])
        return [
            [(p.first_name + " ", False), (sur, True), (f" groep {p.group}", False)],
            [(f"Mijn huis - {street}", False)],
        ], True
    if kind == "whiteboard":
        return [
            [("Beurtrol vandaag:", False)],
            [(f"{p.first_name} ", False), (sur, True), (" - planten", False)],
            [(f"Bel mama: 06-{rng.randint(10_000_000, 99_999_999)}", False)],
        ], True
    # jersey: capitals, name and number
    return [[(_surname_text(p, caps=True), True)], [(str(rng.randint(2, 23)), False)]], False


def render(kind: str, font_name: str, size: int, angle: float, p: Pupil, bg: np.ndarray, rng: random.Random) -> Sample:
    font = ImageFont.truetype(FONT_FILES[font_name], size)
    lines, contact = _lines(kind, p, rng)
    paper = {
        "card": (246, 242, 228),
        "drawing": (252, 252, 248),
        "whiteboard": (236, 240, 242),
        "jersey": (200, 30, 40),
    }[kind]
    ink = {
        "card": (25, 30, 110),
        "drawing": rng.choice([(200, 40, 40), (40, 120, 40), (30, 30, 160), (120, 60, 20)]),
        "whiteboard": (20, 60, 150),
        "jersey": (250, 250, 250),
    }[kind]
    widths = [sum(font.getlength(t) for t, _ in ln) for ln in lines]
    cw, ch = int(max(widths) + size), int(size * 1.5 * len(lines) + size)
    card = Image.new("RGBA", (cw, ch), (*paper, 255))
    mask = Image.new("L", (cw, ch), 0)
    d, dm = ImageDraw.Draw(card), ImageDraw.Draw(mask)
    for k, ln in enumerate(lines):
        x = size / 2
        y = size / 2 + k * size * 1.5
        for piece, is_sur in ln:
            d.text((x, y), piece, font=font, fill=(*ink, 255))
            if is_sur:
                dm.text((x, y), piece, font=font, fill=255)
            x += font.getlength(piece)
    card = card.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    mask = mask.rotate(angle, expand=True, resample=Image.Resampling.NEAREST)
    photo = Image.fromarray(bg)
    px = rng.randint(0, max(0, W - card.width))
    py = rng.randint(0, max(0, H - card.height))
    photo.paste(card, (px, py), card)
    full = Image.new("L", (W, H), 0)
    full.paste(mask, (px, py))
    ink_mask = np.asarray(full) > 127
    return Sample(kind, font_name, size, angle, p, np.asarray(photo.convert("RGB")), ink_mask, contact)


def backgrounds(n: int) -> list[np.ndarray]:
    files = sorted(need(WIDER / "images").rglob("*.jpg"))
    out = []
    for f in files[:n]:
        rgb = load_rgb(f)
        out.append(cv2.resize(rgb, (W, H), interpolation=cv2.INTER_CUBIC))
    return out


def coverage(reds: list[TextRedaction], ink: np.ndarray) -> float:
    canvas = np.zeros(ink.shape, np.uint8)
    for r in reds:
        if r.polygon is not None:
            pts = np.array(r.polygon, np.float32).round().astype(np.int32)
            cv2.fillPoly(canvas, [pts], 1)
        else:
            x1, y1, x2, y2 = r.box.as_ints()
            canvas[max(0, y1) : y2, max(0, x1) : x2] = 1
    total = int(ink.sum())
    return float((canvas.astype(bool) & ink).sum()) / total if total else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=48, help="photos with text")
    ap.add_argument("--clean", type=int, default=12, help="photos without any card (false fills)")
    ap.add_argument("--long-side", type=int, default=960, help="text detection long side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--refine-long-side", type=int, default=None, help="detection long side of a closer look")
    ap.add_argument("--dump", type=Path, help="write photos whose surname was missed here (JPEG, 1/2 size)")
    args = ap.parse_args()

    fonts = [f for f in FONT_FILES if Path(FONT_FILES[f]).is_file()]
    missing = sorted(set(FONT_FILES) - set(fonts))
    pupils = roster()
    rng = random.Random(2026)
    bgs = backgrounds(max(args.n, args.clean) // 2 + 1)
    cfg = TextConfig(det_long_side=args.long_side, threads=args.threads)
    if args.refine_long_side:
        cfg = cfg.model_copy(update={"refine_long_side": args.refine_long_side})
    ocr = OnnxOcr(
        det_long_side=cfg.det_long_side,
        det_thresh=cfg.det_thresh,
        box_thresh=cfg.box_thresh,
        threads=cfg.threads,
        refine_long_side=cfg.refine_long_side,
    )
    ocr.load()
    kinds = ["card", "drawing", "whiteboard", "jersey"]
    times: list[float] = []
    cpu: list[float] = []
    rows: dict[str, list[tuple[bool, float, bool | None]]] = {}
    by_font: dict[str, list[bool]] = {}
    print(f"# text_bench {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    print(f"long side {args.long_side}, {args.threads} threads, fonts: {', '.join(fonts)}")
    if missing:
        print(f"fonts not installed (skipped): {', '.join(missing)}")
    for i in range(args.n):
        kind = kinds[i % len(kinds)]
        font = fonts[(i // len(kinds) + i) % len(fonts)]
        if kind == "drawing" and rng.random() < 0.7:
            font = rng.choice([f for f in HANDWRITING if f in fonts] or fonts)
        size = rng.choice([40, 60, 80, 110, 140, 170])
        angle = rng.uniform(-20, 20)
        p = rng.choice(pupils)
        s = render(kind, font, size, angle, p, bgs[i % len(bgs)], rng)
        t0, c0 = time.perf_counter(), time.process_time()
        boxes = ocr.find_text(s.rgb)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        closed = decide_text(boxes, pupils, PARRO, TODAY, cfg)
        public = decide_text(boxes, pupils, WEBSITE, TODAY, cfg)
        found = any(r.reason == "surname" and p.pupil_id in r.pupil_ids for r in closed)
        cov = coverage([r for r in closed if r.reason == "surname"], s.surname_ink)
        contact = None
        if s.has_contact:
            contact = any(r.reason in ("street address", "postcode", "phone number") for r in public)
        rows.setdefault(kind, []).append((found, cov, contact))
        if args.dump and not found:
            args.dump.mkdir(parents=True, exist_ok=True)
            small = cv2.resize(s.rgb, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(args.dump / f"miss-{i:03d}-{kind}.jpg"), small[..., ::-1])
        by_font.setdefault(font, []).append(found)
        print(
            f"{i:3d} {kind:10s} {font:24s} {size:4d}px {angle:6.1f}° found={found!s:5s} cov={cov:.2f} "
            f"contact={contact} {times[-1]:.2f}s | {' / '.join(b.text for b in boxes)[:90]}"
        )
    false_fills: list[int] = []
    fill_reasons: dict[str, int] = {}
    for k in range(args.clean):
        rgb = bgs[(k + 1) % len(bgs)]
        boxes = ocr.find_text(rgb)
        public = decide_text(boxes, pupils, WEBSITE, TODAY, cfg)
        false_fills.append(len(public))
        for r in public:
            fill_reasons[r.reason] = fill_reasons.get(r.reason, 0) + 1
    table = []
    allrows = [r for v in rows.values() for r in v]
    for kind, rs in [*rows.items(), ("all", allrows)]:
        cs = [c for _, _, c in rs if c is not None]
        table.append(
            [
                kind,
                str(len(rs)),
                f"{sum(f for f, _, _ in rs)}/{len(rs)}",
                f"{sum(c >= 0.95 for _, c, _ in rs)}/{len(rs)}",
                f"{statistics.mean(c for _, c, _ in rs):.3f}",
                f"{sum(cs)}/{len(cs)}" if cs else "-",
            ]
        )
    print()
    print(md_table(["kind", "photos", "surname found", "surname ink ≥95 % covered", "mean ink covered",
                    "address/phone flagged (public)"], table))  # fmt: skip
    print()
    print(md_table(["font", "found"], [[f, f"{sum(v)}/{len(v)}"] for f, v in sorted(by_font.items())]))
    print()
    times.sort()
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(
        f"find_text per 12 MP photo: median {statistics.median(times):.2f} s, p90 {p90:.2f} s, "
        f"max {times[-1]:.2f} s; CPU median {statistics.median(cpu):.2f} s"
    )
    print(f"photos without text cards: {sum(false_fills)} regions filled on the public channel in {args.clean} photos "
          f"({sum(1 for f in false_fills if f)} photos with any): "
          + ", ".join(f"{k} {v}" for k, v in sorted(fill_reasons.items())))  # fmt: skip


if __name__ == "__main__":
    main()

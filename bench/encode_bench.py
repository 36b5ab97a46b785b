"""Decode + orientation + clean encode speed per format, and the metadata-corpus table.

Usage::

    PYTHONPATH=src .venv/bin/python bench/encode_bench.py [--runs 5] [--side 2000] [--no-corpus]

12 MP inputs (4000x3000) are made in a temporary folder from a corpus photo, upscaled, in each
input format (JPEG, HEIC, WebP, PNG). Each run decodes the bytes (with EXIF Orientation 6, so the
rotation is part of the work) and writes one channel's clean JPEG (longest side ``--side``).
Prints markdown tables: medians per format, then the corpus outcome (published clean / refused,
orientation errors, JPEG size ratios). Reads ../shared read-only; needs exiftool for leakcheck.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from photoguard.config import MediaConfig  # noqa: E402
from photoguard.photo.decode import MediaError, decode_bytes, decode_file, walk_jpeg  # noqa: E402
from photoguard.photo.encode import encode_clean, verify_clean  # noqa: E402

SHARED = ROOT / ".." / "shared" / "meta"
CORPUS = SHARED / "corpus"
SEED_PHOTO = "me__jpg__Canon_EOS_1000D.jpg"
CFG = MediaConfig()


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def make_inputs(folder: Path) -> dict[str, bytes]:
    with Image.open(CORPUS / SEED_PHOTO) as src:
        upright = ImageOps.exif_transpose(src).convert("RGB")
    big = upright.resize((4000, 3000), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    out: dict[str, bytes] = {}
    for fmt, kw in (
        ("JPEG", {"quality": 92, "exif": exif.tobytes()}),
        ("HEIF", {"quality": 80, "exif": exif.tobytes()}),
        ("WEBP", {"quality": 85, "exif": exif.tobytes()}),
        ("PNG", {"exif": exif.tobytes(), "compress_level": 6}),
    ):
        buf = io.BytesIO()
        big.save(buf, fmt, **kw)
        out[fmt] = buf.getvalue()
        (folder / f"bench.{fmt.lower()}").write_bytes(out[fmt])
    return out


def bench_formats(runs: int, side: int) -> list[tuple[str, int, float, float, float, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        for fmt, data in inputs.items():
            dec, enc, tot, cpu = [], [], [], []
            for _ in range(runs):
                c0 = time.process_time()
                t0 = time.perf_counter()
                img = decode_bytes(data, CFG)
                t1 = time.perf_counter()
                out, _ = encode_clean(img.pixels, None, fmt="jpeg", quality=img.jpeg_quality or 92, max_side=side)
                t2 = time.perf_counter()
                cpu.append(time.process_time() - c0)
                dec.append(t1 - t0)
                enc.append(t2 - t1)
                tot.append(t2 - t0)
                assert img.pixels.shape[:2] == (4000, 3000)  # rotated by Orientation 6
            t3 = time.perf_counter()
            verify_clean(out)
            ver = time.perf_counter() - t3
            rows.append(
                (
                    fmt,
                    len(data),
                    statistics.median(dec),
                    statistics.median(enc),
                    statistics.median(tot),
                    statistics.median(cpu),
                    ver,
                )
            )
    return rows


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-9 else 1.0


def _gray(im: Image.Image, size: tuple[int, int]) -> np.ndarray:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(im.convert("L").resize(size, Image.Resampling.BOX), np.float64)


def orientation_ok(src: Path, out: bytes) -> bool:
    if "__heic__" in src.name:
        import pillow_heif

        heif = pillow_heif.open_heif(src)
        ref = heif[heif.primary_index].to_pillow()
    else:
        with Image.open(src) as raw:
            ref = ImageOps.exif_transpose(raw)
            ref.load()
    with Image.open(io.BytesIO(out)) as o:
        if o.size != ref.size:
            return False
        w, h = ref.size
        size = (max(4, min(48, w)), max(4, min(48, round(48 * h / w))))
        return _ncc(_gray(o, size), _gray(ref, size)) > 0.9 or float(_gray(o, size).std()) < 1


def corpus_table() -> tuple[list[dict], dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        outs: list[str] = []
        for src in sorted(CORPUS.iterdir()):
            row: dict = {"file": src.name}
            try:
                img = decode_file(src, CFG)
            except MediaError as exc:
                row["status"] = f"refused: {exc.reason}"
                rows.append(row)
                continue
            q = img.jpeg_quality or CFG.jpeg_quality
            data, ext = encode_clean(img.pixels, None, fmt="auto", quality=q, max_side=20000)
            path = Path(tmp) / f"{src.stem}.{ext}"
            path.write_bytes(data)
            outs.append(str(path))
            row.update(out=str(path), ext=ext, q=img.jpeg_quality, orient=orientation_ok(src, data))
            row["size"] = f"{img.pixels.shape[1]}x{img.pixels.shape[0]}"
            if src.suffix.lower() == ".jpg":
                raw = src.read_bytes()
                lay = walk_jpeg(raw)
                meta = sum(len(s.payload) + 4 for s in lay.segments if 0xE0 <= s.marker <= 0xEF or s.marker == 0xFE)
                img_bytes = (lay.eoi_end or len(raw)) - meta
                row.update(in_file=len(raw), in_img=img_bytes, out_bytes=len(data))
            rows.append(row)
        proc = subprocess.run(
            [sys.executable, str(SHARED / "leakcheck.py"), "--json", *outs],
            capture_output=True,
            text=True,
        )
        leak = {Path(r["file"]).name: r["status"] for r in json.loads(proc.stdout or "[]")}
        for row in rows:
            if "out" in row:
                row["leak"] = leak.get(Path(row["out"]).name, "?")
        return rows, {"leakcheck_rc": proc.returncode}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--side", type=int, default=2000)
    ap.add_argument("--no-corpus", action="store_true")
    a = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus missing: {CORPUS}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}\n")
    print(f"## 12 MP (4000x3000, Orientation 6) -> clean JPEG, long side {a.side}, median of {a.runs}\n")
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    print("| input | bytes | decode+orient+colour s | encode s | total s | CPU s | verify_clean ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fmt, size, dec, enc, tot, cpu, ver in bench_formats(a.runs, a.side):
        print(f"| {fmt} | {size:,} | {dec:.3f} | {enc:.3f} | **{tot:.3f}** | {cpu:.3f} | {ver * 1000:.1f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if a.no_corpus:
        return 0
    rows, info = corpus_table()
    published = [r for r in rows if "out" in r]
    refused = [r for r in rows if "out" not in r]
    clean = [r for r in published if r.get("leak") == "CLEAN"]
    orient_err = [r["file"] for r in published if not r["orient"]]
    print("\n## Metadata corpus\n")
    print(f"- files: {len(rows)}; published: {len(published)} (leakcheck CLEAN: {len(clean)}); ")
    print(f"  refused: {len(refused)}; leakcheck exit code: {info['leakcheck_rc']}")
    for r in refused:
        print(f"  - {r['file']}: {r['status']}")
    print(f"- orientation errors: {len(orient_err)} {orient_err if orient_err else ''}")
    print("\n| corpus JPEG | pixels | quality | input file | input image data | output | out/file | out/image |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        if "in_img" in r:
            print(
                f"| {r['file']} | {r['size']} | {r['q']} | {r['in_file']:,} | {r['in_img']:,} | "
                f"{r['out_bytes']:,} | {r['out_bytes'] / r['in_file']:.2f} | "
                f"{r['out_bytes'] / r['in_img']:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

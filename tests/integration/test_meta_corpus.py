"""The metadata corpus (../shared/meta): every file is published clean or refused with a reason.

Needs ``exiftool`` (Debian ``libimage-exiftool-perl``) for ``leakcheck.py`` and as the independent
source of EXIF orientation. The corpus is read only; every output goes to ``tmp_path``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from photoguard.config import MediaConfig
from photoguard.photo.decode import MediaError, decode_file, walk_jpeg
from photoguard.photo.encode import encode_clean, verify_clean, verify_decodes
from tests.support.shared import SHARED

META = SHARED / "meta"
CORPUS = META / "corpus"
LEAKCHECK = META / "leakcheck.py"
TRUNCATED = "me__jpg__User_Comment_Encoding.jpg"
#: Files that must be refused (and nothing else may be).
EXPECTED_REFUSED = {TRUNCATED}
CFG = MediaConfig()
#: Output long side for the size comparison: large enough that nothing is resized.
NO_RESIZE = 20000


def _require_corpus() -> list[Path]:
    if not CORPUS.is_dir() or not LEAKCHECK.is_file():
        pytest.fail(
            f"metadata corpus missing: expected {CORPUS} and {LEAKCHECK} (the repository's sibling folder ../shared)"
        )
    files = sorted(p for p in CORPUS.iterdir() if p.is_file())
    assert len(files) == 64, f"expected 64 corpus files in {CORPUS}, found {len(files)}"
    return files


def _require_exiftool() -> str:
    exe = shutil.which("exiftool")
    if exe is None:
        pytest.fail(
            "exiftool not found: install Debian's libimage-exiftool-perl (apt-get install -y libimage-exiftool-perl)"
        )
    return exe


@dataclass
class Outcome:
    source: Path
    output: Path | None
    reason: str | None
    pixels: np.ndarray | None
    quality: int | None


@dataclass
class CorpusRun:
    outcomes: dict[str, Outcome]
    leak: dict[str, dict]  # leakcheck result per output path (and per control original)
    leak_rc: int
    controls: list[str]  # original corpus files added to the batch as positive controls


def _leakcheck(paths: list[str]) -> tuple[int, dict[str, dict]]:
    proc = subprocess.run(
        [sys.executable, str(LEAKCHECK), "--json", *paths],
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"leakcheck gave no JSON (rc={proc.returncode}): {proc.stderr[:500]}")
    return proc.returncode, {r["file"]: r for r in results}


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    files = _require_corpus()
    _require_exiftool()
    out_dir = tmp_path_factory.mktemp("corpus_out")
    outcomes: dict[str, Outcome] = {}
    for src in files:
        try:
            img = decode_file(src, CFG)
        except MediaError as exc:
            outcomes[src.name] = Outcome(src, None, exc.reason, None, None)
            continue
        q = img.jpeg_quality or CFG.jpeg_quality
        data, ext = encode_clean(img.pixels, None, fmt="auto", quality=q, max_side=NO_RESIZE)
        out = out_dir / f"{src.stem}.{ext}"
        out.write_bytes(data)
        if max(img.pixels.shape[:2]) > 1080:
            # a typical public channel size as well, through the resize path
            small, ext2 = encode_clean(img.pixels, None, fmt="auto", quality=q, max_side=1080)
            (out_dir / f"{src.stem}.1080.{ext2}").write_bytes(small)
        outcomes[src.name] = Outcome(src, out, None, img.pixels, img.jpeg_quality)
    controls = [str(CORPUS / "et__t__images__GPS.jpg"), str(CORPUS / "me__heic__IMG_1034.heic")]
    outputs = sorted(str(p) for p in out_dir.iterdir())
    rc, leak = _leakcheck(outputs + controls)
    return CorpusRun(outcomes, leak, rc, controls)


def test_corpus_is_complete() -> None:
    files = _require_corpus()
    kinds = {p.name.split("__")[1] for p in files}
    assert {"jpg", "png", "webp", "heic"} <= kinds


def test_every_file_is_published_or_refused_with_a_reason(corpus_run: CorpusRun) -> None:
    refused = {n for n, o in corpus_run.outcomes.items() if o.output is None}
    assert refused == EXPECTED_REFUSED, f"unexpected refusals/acceptances: {refused ^ EXPECTED_REFUSED}"
    for name in refused:
        reason = corpus_run.outcomes[name].reason
        assert reason and len(reason) > 15 and name not in reason
    assert "incomplete" in (corpus_run.outcomes[TRUNCATED].reason or "")


def test_leakcheck_finds_no_metadata_in_any_output(corpus_run: CorpusRun) -> None:
    dirty = {
        Path(f).name: [(x["key"], x["value"][:80]) for x in r["findings"] if x["level"] in ("LEAK", "ERROR")]
        for f, r in corpus_run.leak.items()
        if f not in corpus_run.controls and r["status"] != "CLEAN"
    }
    assert dirty == {}
    published = [o for o in corpus_run.outcomes.values() if o.output is not None]
    outputs_checked = [f for f in corpus_run.leak if f not in corpus_run.controls]
    assert len(outputs_checked) > len(published)


def test_leakcheck_positive_controls_are_caught(corpus_run: CorpusRun) -> None:
    # the checker itself must be able to fail: untouched originals are leaks (exit 1)
    for c in corpus_run.controls:
        assert corpus_run.leak[c]["status"] == "LEAK", c
    assert corpus_run.leak_rc == 1


def test_verify_clean_accepts_every_output(corpus_run: CorpusRun) -> None:
    for o in corpus_run.outcomes.values():
        if o.output is not None:
            data = o.output.read_bytes()
            assert verify_clean(data) == [], o.source.name
            assert verify_decodes(data) == [], o.source.name


# --------------------------------------------------------------------------------------------
# Orientation


_TRANSPOSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _exiftool_json(paths: list[Path], *tags: str) -> dict[str, dict]:
    exe = _require_exiftool()
    proc = subprocess.run(
        [exe, "-j", "-n", *(f"-{t}" for t in tags), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {Path(r["SourceFile"]).name: r for r in json.loads(proc.stdout or "[]")}


def _small_gray(im: Image.Image, size: tuple[int, int]) -> np.ndarray:
    g = np.asarray(im.convert("L").resize(size, Image.Resampling.BOX), np.float64)
    return g - g.mean()


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-9 else 1.0


def _same_orientation(out: Image.Image, ref: Image.Image, name: str) -> str | None:
    """None when ``out`` shows ``ref`` upright; else what is wrong."""
    if out.size != ref.size:
        return f"{name}: size {out.size} != reference {ref.size}"
    w, h = ref.size
    size = (max(4, min(48, w)), max(4, min(48, round(48 * h / max(w, 1)))))
    o = _small_gray(out, size)
    if float(np.abs(o).max()) < 1.0:
        return None  # a flat image has no orientation to get wrong
    scores = {}
    for k, t in _TRANSPOSE.items():
        cand = ref if t is None else ref.transpose(t)
        if cand.size == ref.size:
            scores[k] = _ncc(o, _small_gray(cand, size))
    best = max(scores, key=lambda k: scores[k])
    if scores[1] < 0.9:
        return f"{name}: output does not match the upright reference (ncc {scores[1]:.2f})"
    if best != 1 and scores[best] > scores[1] + 1e-6:
        return f"{name}: output matches transform {best} better than upright"
    return None


def _flat(im: Image.Image) -> Image.Image:
    """RGB, with any transparency composited on white (hidden colour must not count)."""
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _reference_colour(im: Image.Image) -> Image.Image:
    """The raw decoded pixels as RGB, colour-managed with ImageCms directly."""
    icc = im.info.get("icc_profile")
    rgb = _flat(im)
    if icc and im.mode in ("RGB", "RGBA"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            conv = ImageCms.profileToProfile(rgb, src, dst, outputMode="RGB")
            if conv is not None:
                rgb = conv
        except ImageCms.PyCMSError:
            pass
    return rgb


def test_orientation_of_jpeg_png_webp_matches_exiftool(corpus_run: CorpusRun) -> None:
    published = [o for o in corpus_run.outcomes.values() if o.output is not None and "__heic__" not in o.source.name]
    meta = _exiftool_json([o.source for o in published], "Orientation")
    errors = []
    checked_rotated = 0
    for o in published:
        orient = int(meta.get(o.source.name, {}).get("Orientation", 1) or 1)
        if orient not in _TRANSPOSE:
            orient = 1
        with Image.open(o.source) as raw:
            raw.seek(0)
            ref = _reference_colour(raw)
        t = _TRANSPOSE[orient]
        if t is not None:
            ref = ref.transpose(t)
            checked_rotated += 1
        assert o.output is not None
        with Image.open(o.output) as out:
            problem = _same_orientation(_flat(out), ref, o.source.name)
        if problem:
            errors.append(problem)
    assert errors == []
    assert checked_rotated >= 12  # the corpus holds Orientation 2-8 several times


def _heif_transforms(path: Path) -> tuple[tuple[int, int], int, int | None]:
    """(ispe size, irot quarter turns anticlockwise, imir axis) of the primary item, parsed here."""
    import struct

    data = path.read_bytes()

    def boxes(start: int, end: int):  # type: ignore[no-untyped-def]
        i = start
        while i + 8 <= end:
            size, typ = struct.unpack_from(">I4s", data, i)
            hdr = 8
            if size == 1:
                size = struct.unpack_from(">Q", data, i + 8)[0]
                hdr = 16
            elif size == 0:
                size = end - i
            if size < hdr:
                return
            yield typ, i + hdr, min(i + size, end)
            i += size

    meta = next((s, e) for t, s, e in boxes(0, len(data)) if t == b"meta")
    primary = 1
    props: list[tuple[bytes, bytes]] = []
    assoc: dict[int, list[int]] = {}
    for t, s, e in boxes(meta[0] + 4, meta[1]):
        body = data[s:e]
        if t == b"pitm":
            primary = struct.unpack_from(">H" if body[0] == 0 else ">I", body, 4)[0]
        if t == b"iprp":
            for t2, s2, e2 in boxes(s, e):
                if t2 == b"ipco":
                    props = [(t3, data[s3:e3]) for t3, s3, e3 in boxes(s2, e2)]
                elif t2 == b"ipma":
                    b2 = data[s2:e2]
                    ver, flags = b2[0], int.from_bytes(b2[1:4], "big")
                    count = struct.unpack_from(">I", b2, 4)[0]
                    p = 8
                    for _ in range(count):
                        iid = struct.unpack_from(">H" if ver < 1 else ">I", b2, p)[0]
                        p += 2 if ver < 1 else 4
                        n = b2[p]
                        p += 1
                        lst = []
                        for _ in range(n):
                            if flags & 1:
                                lst.append(struct.unpack_from(">H", b2, p)[0] & 0x7FFF)
                                p += 2
                            else:
                                lst.append(b2[p] & 0x7F)
                                p += 1
                        assoc[iid] = lst
    size, rot, mir = (0, 0), 0, None
    for k in assoc.get(primary, []):
        t, b = props[k - 1]
        if t == b"ispe":
            size = struct.unpack_from(">II", b, 4)
        elif t == b"irot":
            rot = b[0] & 3
        elif t == b"imir":
            mir = b[0] & 1
    return size, rot, mir


def test_orientation_of_heic_follows_its_own_transforms(corpus_run: CorpusRun) -> None:
    import pillow_heif

    heics = [o for o in corpus_run.outcomes.values() if "__heic__" in o.source.name]
    assert len(heics) == 8
    errors = []
    rotated = 0
    for o in heics:
        assert o.output is not None and o.pixels is not None
        (w, h), rot, _mir = _heif_transforms(o.source)
        rotated += rot % 2
        expect = (h, w) if rot % 2 else (w, h)
        # grid images may carry a clean aperture; ispe then is the coded size (never smaller)
        got = (o.pixels.shape[1], o.pixels.shape[0])
        if not (got == expect or (got[0] <= expect[0] and got[1] <= expect[1] and rot % 2 == 0)):
            errors.append(f"{o.source.name}: {got} but ispe {w}x{h} with irot {rot} gives {expect}")
        # libheif applies irot/imir; the EXIF Orientation it leaves behind must not be applied again
        heif = pillow_heif.open_heif(o.source, convert_hdr_to_8bit=True)
        ref = heif[heif.primary_index].to_pillow()
        with Image.open(o.output) as out:
            problem = _same_orientation(_flat(out), _reference_colour(ref), o.source.name)
        if problem:
            errors.append(problem)
    assert errors == []
    assert rotated >= 2  # the corpus has irot 3 (270 degrees) photos


# --------------------------------------------------------------------------------------------
# Size


def _image_data_size(data: bytes) -> int:
    """Bytes of the primary JPEG stream without APPn/COM segments (metadata, thumbnails)."""
    layout = walk_jpeg(data)
    assert layout.eoi_end is not None
    meta = sum(len(s.payload) + 4 for s in layout.segments if 0xE0 <= s.marker <= 0xEF or s.marker == 0xFE)
    return layout.eoi_end - meta


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def jpeg_size_table(run: CorpusRun) -> list[tuple[str, int, int, int, int, float, float]]:
    """(name, pixels, input image bytes, output bytes, quality, ratio, psnr) per corpus JPEG."""
    rows = []
    for o in run.outcomes.values():
        if o.output is None or not o.source.name.endswith(".jpg") or o.pixels is None:
            continue
        src = o.source.read_bytes()
        out = o.output.read_bytes()
        with Image.open(io.BytesIO(out)) as im:
            out_px = np.asarray(im.convert("RGB"))
        in_size = _image_data_size(src)
        rows.append(
            (
                o.source.name,
                o.pixels.shape[0] * o.pixels.shape[1],
                in_size,
                len(out),
                o.quality or 0,
                len(out) / in_size,
                _psnr(out_px, o.pixels),
            )
        )
    return rows


def test_jpeg_output_keeps_at_least_ninety_percent_of_the_bytes(corpus_run: CorpusRun) -> None:
    """Same pixel size, >= 0.9 x the input's image bytes (its metadata and thumbnails excluded).

    Low-entropy images whose input used the standard Huffman tables shrink by more than 10 %
    from Huffman optimisation alone; those must instead show that no quality was lost: PSNR of
    the output against the decoded input of at least 40 dB.
    """
    rows = jpeg_size_table(corpus_run)
    assert len(rows) >= 40
    bad = []
    for name, pixels, in_size, out_size, _q, ratio, psnr in rows:
        if pixels < 100_000:
            continue  # 8x8 test files: the stream is mostly table headers
        if ratio < 0.9 and psnr < 40.0:
            bad.append(f"{name}: {out_size}/{in_size} = {ratio:.2f}, psnr {psnr:.1f} dB")
    assert bad == []
    big = [r for r in rows if r[1] >= 1_000_000]
    assert big and all(r[5] >= 0.9 for r in big), [(r[0], round(r[5], 2)) for r in big]

"""The real text models (PP-OCRv6) inside the pipeline: a name card drawn with Pillow, read by the
OCR, covered per channel (fake face models: the faces are not the point here)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoguard.core.records import Box, PhotoStatus
from photoguard.photo.text import OnnxOcr, TextFinder
from tests.support.school import DAAN, EMMA, consent_csv, make_school
from tests.support.text import FONT_FILES, Line, draw_text, word_box

NOOR = ("1003", "Noor", "ter", "Horst", "7", "", "nee", "nee", "nee", "nee", "nee", "nee", "nee")


@pytest.fixture(scope="module")
def finder() -> TextFinder:
    engine = OnnxOcr()
    engine.load()
    return TextFinder(engine)


def _ink(path: Path, box: Box, src_width: int) -> float:
    img = Image.open(path).convert("L")
    k = img.width / src_width
    x1, y1, x2, y2 = Box(box.x1 * k, box.y1 * k, box.x2 * k, box.y2 * k).as_ints()
    a = np.asarray(img).astype(np.float32)[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2]
    return float(a.std())


@pytest.mark.parametrize(("font", "size"), [(FONT_FILES[0], 64), (FONT_FILES[1], 52), (FONT_FILES[3], 72)])
def test_a_name_card_read_by_the_real_ocr_is_covered_per_channel(
    tmp_path: Path, finder: TextFinder, font: str, size: int
) -> None:
    rng = np.random.default_rng(11)
    img = rng.normal(120, 12, size=(1200, 1800, 3)).clip(0, 255).astype(np.uint8)
    lines = [Line("Noor ter Horst groep 7", 200, 500, size, font), Line("Emma", 200, 800, size, font)]
    noor, emma = draw_text(img, lines)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    root, pipe = make_school(tmp_path, consent=consent_csv([EMMA, DAAN, NOOR]), text=finder)
    res = pipe.process_bytes(buf.getvalue(), source="kaart.png", stem="kaart", suffix=".png", group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    for ch, rel in res.outputs.items():
        out = root / rel
        for word in ("Noor", "ter Horst"):
            assert _ink(out, word_box(noor, word), 1800) < 8, (ch, word)
        assert _ink(out, word_box(noor, "groep"), 1800) > 20, ch
        public = ch in ("website", "social")
        assert (_ink(out, emma.box, 1800) < 8) is public, ch

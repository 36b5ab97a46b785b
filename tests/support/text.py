"""Text in test photos: lines drawn with Pillow (real fonts from Debian's fonts packages) and a
fake text finder that 'reads' them back.

``draw_text`` paints lines of dark ink on a light card and returns, per line, the ``TextBox`` a
perfect OCR would give (box, polygon and per-character positions from the font's own advances).
``FakeTextFinder`` returns those lines for a photo only where the line's ink is still there (a
covered or blank region reads as nothing), so the pipeline tests with fake face models stay fast
while the real OCR runs in ``tests/model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from photoguard.core.records import Box
from photoguard.core.textpolicy import TextBox

FONTS = Path("/usr/share/fonts/truetype")
#: a few faces in the Debian fonts packages the tests can rely on (dejavu, liberation)
FONT_FILES: tuple[str, ...] = (
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSerif-Bold.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "liberation/LiberationSerif-Italic.ttf",
)


def font(size: int, name: str = FONT_FILES[0]) -> ImageFont.FreeTypeFont:
    path = FONTS / name
    if not path.is_file():
        raise FileNotFoundError(f"font {path} is missing (Debian packages fonts-dejavu-core, fonts-liberation)")
    return ImageFont.truetype(str(path), size)


@dataclass(frozen=True)
class Line:
    text: str
    x: int
    y: int
    size: int = 20
    font_name: str = FONT_FILES[0]


def word_box(tb: TextBox, word: str) -> Box:
    """Where ``word`` of the line sits (from the line's per-character positions)."""
    start = tb.text.index(word)
    end = start + len(word)
    f0, f1 = tb.char_spans[start][0], tb.char_spans[end - 1][1]
    x1, x2 = tb.box.x1 + f0 * tb.box.width, tb.box.x1 + f1 * tb.box.width
    return Box(x1, tb.box.y1, x2, tb.box.y2)


def draw_text(rgb: np.ndarray, lines: Sequence[Line], *, ink: tuple[int, int, int] = (20, 20, 90)) -> list[TextBox]:
    """Paint ``lines`` into ``rgb`` (in place) on a light card each; the lines as read perfectly."""
    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    out: list[TextBox] = []
    for ln in lines:
        f = font(ln.size, ln.font_name)
        x1, y1, x2, y2 = draw.textbbox((ln.x, ln.y), ln.text, font=f)
        draw.rectangle((x1 - 4, y1 - 4, x2 + 4, y2 + 4), fill=(240, 236, 220))
        draw.text((ln.x, ln.y), ln.text, font=f, fill=ink)
        width = float(x2 - x1)
        spans = []
        for i in range(len(ln.text)):
            a = ln.x + f.getlength(ln.text[:i]) - x1
            b = ln.x + f.getlength(ln.text[: i + 1]) - x1
            spans.append((max(0.0, a / width), min(1.0, b / width)))
        box = Box(float(x1), float(y1), float(x2), float(y2))
        quad = ((box.x1, box.y1), (box.x2, box.y1), (box.x2, box.y2), (box.x1, box.y2))
        out.append(TextBox(box, ln.text, 0.97, quad, 0.9, tuple(spans)))
    rgb[...] = np.asarray(img)
    return out


class FakeTextFinder:
    """Returns the known ``lines`` whose ink is still in the photo; counts its calls. With no lines
    it finds nothing (the default in ``make_school``)."""

    def __init__(self, lines: Sequence[TextBox] = (), *, error: Exception | None = None) -> None:
        self.lines = list(lines)
        self.error = error
        self.calls = 0

    def find_text(self, rgb: np.ndarray) -> list[TextBox]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        found = []
        for tb in self.lines:
            x1, y1, x2, y2 = tb.box.as_ints()
            patch = rgb[max(0, y1) : y2, max(0, x1) : x2].astype(np.float32)
            if patch.size and patch.std() > 25:  # ink on the card survives only when not covered
                found.append(tb)
        return found

"""Text finding: the injectable API (fake OCR), model integrity, telemetry off, and real models on
rendered name cards (``model`` marker)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from photoguard.config import ChannelConfig
from photoguard.core.records import Box, Pupil
from photoguard.core.textpolicy import TextBox, decide_text
from photoguard.photo import text as text_mod
from photoguard.photo.detect.base import ModelError, ModelFile
from photoguard.photo.text import DET_MODEL, REC_MODEL, OnnxOcr, TextFinder, find_text
from tests.support.home import run_in_empty_home

REPO = Path(__file__).resolve().parents[1]
#: Debian's fonts-dejavu-core and fonts-comic-neue (a handwriting-style face); .ci/run installs them
FONTS = {
    "sans": Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    "serif-bold": Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf"),
    "comic": Path("/usr/share/fonts/opentype/comic-neue/ComicNeue-Bold.otf"),
}
TODAY = date(2026, 12, 2)
NOOR = Pupil("2001", "Noor", "ter", "Horst", "5", consents={})
PARRO = ChannelConfig(name="parro", consent="parro", public=False)
WEBSITE = ChannelConfig(name="website", consent="website", public=True)


class FakeOcr:
    def __init__(self, boxes: list[TextBox]) -> None:
        self.boxes = boxes
        self.calls = 0

    def find_text(self, rgb: np.ndarray) -> list[TextBox]:
        self.calls += 1
        return list(self.boxes)


def test_find_text_uses_the_injected_engine() -> None:
    tb = TextBox(Box(1, 2, 30, 12), "Noor ter Horst", 0.9)
    fake = FakeOcr([tb])
    img = np.zeros((40, 40, 3), np.uint8)
    assert find_text(img, engine=fake) == [tb]
    assert TextFinder(fake).find_text(img) == [tb]
    assert fake.calls == 2


def test_text_finder_loads_nothing_until_used() -> None:
    finder = TextFinder()
    assert finder._engine is None


def test_importing_photoguard_turns_onnxruntime_telemetry_off() -> None:
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", "import os, photoguard; print(os.environ['ORT_DISABLE_TELEMETRY'])"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == "1"


def test_altered_model_file_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = ModelFile(DET_MODEL.package, DET_MODEL.distribution, DET_MODEL.relpath, "0" * 64)
    monkeypatch.setattr(text_mod, "DET_MODEL", bad)
    with pytest.raises(ModelError, match="sha256"):
        OnnxOcr().load()


def test_missing_model_wheel_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = ModelFile("no_such_pkg_photoguard", "no-such-dist", "models/x.onnx", "0" * 64)
    monkeypatch.setattr(text_mod, "REC_MODEL", gone)
    with pytest.raises(ModelError, match="not found"):
        OnnxOcr().load()


def test_rejects_non_rgb_input() -> None:
    with pytest.raises(ValueError):
        OnnxOcr().find_text(np.zeros((10, 10), np.uint8))


# --------------------------------------------------------------------------------------------
# Real models


def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = FONTS[name]
    if not path.is_file():
        pytest.fail(f"font {path} is missing: install Debian's fonts-dejavu-core and fonts-comic-neue")
    return ImageFont.truetype(str(path), size)


def _photo_with_card(lines: list[str], *, angle: float, font: str, size: int, long_side: int = 4000) -> np.ndarray:
    """A 12 MP-shaped noisy 'photo' with a paper card holding ``lines``, turned by ``angle``."""
    rng = np.random.default_rng(7)
    h = long_side * 3 // 4
    bg = rng.normal(110, 25, size=(h // 8, long_side // 8, 3)).clip(0, 255).astype(np.uint8)
    photo = Image.fromarray(bg).resize((long_side, h), Image.Resampling.BILINEAR)
    f = _font(font, size)
    width = max(int(f.getlength(s)) for s in lines) + size
    card = Image.new("RGBA", (width, int(size * 1.6 * len(lines)) + size), (246, 242, 228, 255))
    d = ImageDraw.Draw(card)
    for k, s in enumerate(lines):
        d.text((size // 2, size // 2 + int(k * size * 1.6)), s, font=f, fill=(25, 30, 110, 255))
    card = card.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    photo.paste(card, (long_side // 4, h // 3), card)
    return np.asarray(photo.convert("RGB"))


@pytest.fixture(scope="module")
def ocr() -> OnnxOcr:
    engine = OnnxOcr()
    engine.load()
    return engine


@pytest.mark.model
@pytest.mark.parametrize(
    ("font", "size", "angle"),
    [("sans", 110, 0.0), ("serif-bold", 90, 8.0), ("comic", 140, -15.0)],
)
def test_name_card_surname_is_found_and_covered(ocr: OnnxOcr, font: str, size: int, angle: float) -> None:
    rgb = _photo_with_card(["Noor ter Horst groep 5"], angle=angle, font=font, size=size)
    boxes = ocr.find_text(rgb)
    assert any("horst" in b.text.lower() for b in boxes), [b.text for b in boxes]
    for channel in (PARRO, WEBSITE):
        reds = decide_text(boxes, [NOOR], channel, TODAY)
        surname = [r for r in reds if r.reason == "surname"]
        assert surname, (channel.name, [b.text for b in boxes])
        line = next(b for b in boxes if "horst" in b.text.lower())
        # the covered region lies on the card's line and covers its right part ('Horst ...')
        assert any(r.box.intersection(line.box) > 0.2 * line.box.area for r in surname)


@pytest.mark.model
def test_address_line_is_found_and_flagged_on_public_channels(ocr: OnnxOcr) -> None:
    rgb = _photo_with_card(["Mijn huis - Dorpsstraat 3"], angle=4.0, font="comic", size=110)
    boxes = ocr.find_text(rgb)
    assert any("dorpsstraat" in b.text.lower() for b in boxes), [b.text for b in boxes]
    public = decide_text(boxes, [NOOR], WEBSITE, TODAY)
    assert "street address" in {r.reason for r in public}
    closed = decide_text(boxes, [NOOR], PARRO, TODAY)
    assert "street address" not in {r.reason for r in closed}


@pytest.mark.model
def test_plain_background_has_no_names(ocr: OnnxOcr) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.normal(120, 20, size=(750, 1000, 3)).clip(0, 255).astype(np.uint8)
    boxes = ocr.find_text(rgb)
    assert decide_text(boxes, [NOOR], PARRO, TODAY) == []


@pytest.mark.model
def test_ocr_writes_nothing_under_home_even_when_telemetry_was_switched_on(tmp_path: Path) -> None:
    script = (
        "import numpy as np\n"
        "from photoguard.photo.text import OnnxOcr\n"
        "img = np.full((200, 400, 3), 255, np.uint8)\n"
        "img[80:120, 40:360] = 0\n"
        "OnnxOcr().find_text(img)\n"
        "print('ran')\n"
    )
    assert run_in_empty_home(script, tmp_path / "home").strip() == "ran"


@pytest.mark.model
def test_pinned_model_files_verify() -> None:
    from photoguard.photo.detect.base import verify_file

    for spec in (DET_MODEL, REC_MODEL):
        verify_file(spec.locate(), spec.sha256)


def test_cover_text_fills_the_region_with_the_surrounding_colour() -> None:
    from photoguard.core.textpolicy import TextRedaction
    from photoguard.photo.text import cover_text

    img = np.full((100, 200, 3), (240, 230, 200), np.uint8)
    img[40:60, 50:150] = (10, 10, 120)  # 'ink'
    quad = ((48.0, 38.0), (152.0, 38.0), (152.0, 62.0), (48.0, 62.0))
    out = cover_text(img, [TextRedaction(0, Box(48, 38, 152, 62), quad, "surname")])
    region = out[40:60, 50:150].reshape(-1, 3)
    assert (region == region[0]).all()  # one flat colour
    assert abs(int(region[0][0]) - 240) <= 32 and abs(int(region[0][2]) - 200) <= 32  # the paper's
    assert (out[:30] == img[:30]).all() and (out[70:] == img[70:]).all()  # nothing else touched
    assert (img[40:60, 50:150] == (10, 10, 120)).all()  # the input is not changed


def test_cover_text_without_polygon_fills_the_box() -> None:
    from photoguard.core.textpolicy import TextRedaction
    from photoguard.photo.text import cover_text

    img = np.zeros((50, 50, 3), np.uint8)
    img[10:20, 10:40] = 255
    out = cover_text(img, [TextRedaction(0, Box(10, 10, 40, 20), None, "unreadable text")])
    assert (out[10:20, 10:40] != 255).all()


class _ScriptedOcr(OnnxOcr):
    """OnnxOcr with scripted models: on the whole photo one big block that reads as nonsense; looked
    at closer (a crop), one line that reads well."""

    def __init__(self) -> None:
        super().__init__(det_long_side=960, refine_long_side=640)
        self.detect_calls: list[tuple[int, int]] = []
        self.long_sides: list[int | None] = []

    def load(self) -> None:
        pass

    def _detect(self, bgr: np.ndarray, long_side: int | None = None) -> list[tuple[np.ndarray, float]]:
        self.detect_calls.append(bgr.shape[:2])
        self.long_sides.append(long_side)
        if bgr.shape[1] == 4000:
            return [(np.array([[1000, 1000], [3000, 1000], [3000, 2000], [1000, 2000]], np.float32), 0.9)]
        return [(np.array([[200, 400], [1600, 400], [1600, 560], [200, 560]], np.float32), 0.9)]

    def _recognise(self, crops):  # type: ignore[no-untyped-def]
        return [("Noor ter Horst", 0.98, ()) if c.shape[0] < 300 else ("AN DPLINY", 0.4, ()) for c in crops]


def test_a_line_that_reads_badly_is_looked_at_closer() -> None:
    ocr = _ScriptedOcr()
    boxes = ocr.find_text(np.zeros((3000, 4000, 3), np.uint8))
    assert [b.text for b in boxes] == ["AN DPLINY", "Noor ter Horst"]  # the block is kept (fail closed)
    assert len(ocr.detect_calls) == 2 and ocr.detect_calls[1][1] < 4000
    # the whole photo at det_long_side, the closer look at refine_long_side (cheaper, and on the
    # text bench it read more names: docs/BENCHMARKS.md)
    assert ocr.long_sides == [None, 640]
    line = boxes[1]
    # the crop's coordinates are mapped back to the photo (crop origin 1000 - 5 % margin)
    assert line.box.x1 == pytest.approx(900 + 200) and line.box.y1 == pytest.approx(900 + 400)

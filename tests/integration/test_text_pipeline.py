"""Text in the image through the whole pipeline (fake face models, a fake text finder that reads
the lines drawn with Pillow; the real OCR is in tests/model/test_text_pipeline_real.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoguard.config import Settings
from photoguard.core.records import Box, PhotoStatus
from photoguard.core.textpolicy import TextBox
from photoguard.photo.detect import ModelError
from photoguard.photo.pipeline import Pipeline
from tests.support.models import FACE_A, FACE_B
from tests.support.school import DAAN, EMMA, consent_csv, held_original, make_school
from tests.support.text import FONT_FILES, FakeTextFinder, Line, draw_text, word_box

#: Noor (1003): no consent for anything
NOOR = ("1003", "Noor", "ter", "Horst", "7", "", "nee", "nee", "nee", "nee", "nee", "nee", "nee")
CLOSED = ("newsletter", "parro", "guide")
PUBLIC = ("website", "social")


def _card_photo(lines: Sequence[Line], seed: int = 3) -> tuple[bytes, list[TextBox]]:
    """A 480x320 photo with textured faces at FACE_A and FACE_B and a name card below them."""
    rng = np.random.default_rng(seed)
    img = np.full((320, 480, 3), 120, dtype=np.uint8)
    for b in (FACE_A, FACE_B):
        x1, y1, x2, y2 = b.as_ints()
        img[y1:y2, x1:x2] = rng.integers(0, 255, size=(y2 - y1, x2 - x1, 3), dtype=np.uint8)
    boxes = draw_text(img, lines)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")  # lossless: the test reads ink back exactly
    return buf.getvalue(), boxes


def _school(tmp_path: Path, lines: Sequence[TextBox] = (), **kw: object) -> tuple[Path, Pipeline, FakeTextFinder]:
    finder = FakeTextFinder(lines)
    root, pipe = make_school(tmp_path, consent=consent_csv([EMMA, DAAN, NOOR]), text=finder, **kw)  # type: ignore[arg-type]
    return root, pipe, finder


def _ink(path: Path, box: Box) -> float:
    img = np.asarray(Image.open(path).convert("L")).astype(np.float32)
    x1, y1, x2, y2 = box.as_ints()
    return float(img[y1 + 2 : y2 - 2, x1 + 1 : x2 - 1].std())


def _covered(path: Path, box: Box) -> bool:
    return _ink(path, box) < 6


LINES = [
    Line("Noor ter Horst groep 7", 20, 160, 22),
    Line("Emma de Vries", 20, 200, 22, FONT_FILES[1]),
    Line("Daan van der Berg", 20, 240, 20, FONT_FILES[2]),
    Line("Mijn huis - Dorpsstraat 3", 250, 200, 18, FONT_FILES[3]),
]


def test_names_in_a_name_card_are_covered_per_channel(tmp_path: Path) -> None:
    data, boxes = _card_photo(LINES)
    root, pipe, finder = _school(tmp_path, boxes)
    res = pipe.process_bytes(data, source="kaart.png", stem="kaart", suffix=".png", group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert finder.calls == 1  # once per photo, not per channel
    noor, emma, daan, address = boxes
    assert set(res.outputs) == set(CLOSED + PUBLIC)
    for ch, rel in res.outputs.items():
        out = root / rel
        # surnames (with tussenvoegsel) everywhere
        for tb, word in ((noor, "ter Horst"), (emma, "de Vries"), (daan, "van der Berg")):
            assert _covered(out, word_box(tb, word)), (ch, word)
        # Noor has no consent: her first name goes on every channel
        assert _covered(out, word_box(noor, "Noor")), ch
        # words that are not names stay
        assert not _covered(out, word_box(noor, "groep")), ch
        assert not _covered(out, word_box(address, "Mijn huis")), ch
        public = ch in PUBLIC
        # Emma has no website/social consent; Daan consents everywhere but is public-nameless
        assert _covered(out, word_box(emma, "Emma")) is public, ch
        assert _covered(out, word_box(daan, "Daan")) is public, ch
        # a street address only on public channels
        assert _covered(out, word_box(address, "Dorpsstraat 3")) is public, ch
    assert set(res.text_regions["parro"]) == {"surname", "first name without parro consent"}
    assert set(res.text_regions["website"]) == {"surname", "first name on a public channel", "street address"}


def test_first_name_covered_where_the_pupil_lacks_consent_for_that_channel(tmp_path: Path) -> None:
    # Emma: newsletter/parro/guide yes. With newsletter withdrawn, only the newsletter covers her.
    emma = ("1001", "Emma", "de", "Vries", "7", "", "nee", "ja", "ja", "nee", "nee", "ja", "ja")
    data, boxes = _card_photo([Line("Emma", 20, 200, 24)], seed=4)
    finder = FakeTextFinder(boxes)
    root, pipe = make_school(tmp_path, consent=consent_csv([emma, DAAN]), text=finder)
    res = pipe.process_bytes(data, source="e.png", stem="tekening", suffix=".png", group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    covered = {ch for ch, rel in res.outputs.items() if _covered(root / rel, boxes[0].box)}
    assert covered == {"newsletter", "website", "social"}


def test_audit_counts_regions_per_reason_and_never_the_text(tmp_path: Path) -> None:
    data, boxes = _card_photo(LINES)
    _root, pipe, _ = _school(tmp_path, boxes)
    res = pipe.process_bytes(data, source="kaart.png", stem="kaart", suffix=".png", group="7")
    rows = pipe.store.query("SELECT channel, detail FROM audit WHERE event='publish' AND photo_sha256=?", (res.sha256,))
    details = {r["channel"]: json.loads(r["detail"]) for r in rows}
    assert set(details["guide"]["text"]) == {"surname", "first name without guide consent"}
    assert details["social"]["text"]["first name on a public channel"] >= 2  # Emma and Daan
    assert all(isinstance(n, int) and n > 0 for d in details.values() for n in d["text"].values())
    everything = json.dumps([dict(r) for r in pipe.store.query("SELECT * FROM audit")])
    for word in ("Noor", "Horst", "Vries", "Dorpsstraat", "Emma"):
        assert word not in everything


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (ModelError("text model file altered (sha256 mismatch)"), "sha256 mismatch"),
        (RuntimeError("onnxruntime went away"), "RuntimeError"),
    ],
)
def test_a_text_finder_failure_holds_the_photo(tmp_path: Path, error: Exception, said: str) -> None:
    data, _ = _card_photo(LINES)
    root, pipe = make_school(tmp_path, text=FakeTextFinder(error=error))
    res = pipe.process_bytes(data, source="kaart.png", stem="kaart", suffix=".png", group="7")
    assert res.status is PhotoStatus.HELD
    assert "text in the photo could not be checked" in res.reason and said in res.reason
    assert res.outputs == {} and not any((root / "outbox").rglob("*.png"))
    assert held_original(root, str(res.quarantine_id)) == data


def test_text_finding_can_be_switched_off(tmp_path: Path) -> None:
    data, boxes = _card_photo(LINES)
    finder = FakeTextFinder(boxes)
    root, pipe = make_school(tmp_path, consent=consent_csv([EMMA, DAAN, NOOR]), text=finder)
    settings = pipe.settings.model_copy(update={"text": pipe.settings.text.model_copy(update={"enabled": False})})
    off = Pipeline(root, settings, store=pipe.store, detector=pipe.detector, templates=pipe.templates, text=finder)
    assert isinstance(settings, Settings)
    res = off.process_bytes(data, source="kaart.png", stem="kaart", suffix=".png", group="7")
    assert res.status is PhotoStatus.PUBLISHED and finder.calls == 0
    assert not _covered(root / res.outputs["website"], word_box(boxes[0], "Horst"))

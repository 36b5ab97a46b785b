"""A consent change racing a photo of that pupil: the withdrawn pupil must never end up visible
in the outbox, whichever side wins. Real threads; fake detectors that block on an Event at a
chosen point so the interleaving is forced, not hoped for."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photoguard.config import Settings, load_settings
from photoguard.core.records import Box, Detection, PhotoStatus
from photoguard.followup.propagate import propagate_changes
from photoguard.ledger.consent import Registry, import_csv
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root

CSV = (
    "leerling_id;voornaam;achternaam;groep;nieuwsbrief;parro;schoolgids;website;social_media;"
    "gezichtsherkenning\n"
    "1001;Emma;Vries;7;ja;ja;ja;ja;ja;ja\n"
)
FACE_A = Box(40, 40, 120, 130)  # Emma (1001)
FACE_B = Box(200, 50, 280, 140)  # a stranger
WAIT = 10.0


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v) * 0.5


class GatedDetector:
    """Finds painted face patches; blocks once, on call number ``block_call`` or on the first
    call from the thread named ``block_thread``, until ``release`` is set."""

    name = "gated"

    def __init__(self, boxes: Sequence[Box]) -> None:
        self.boxes = list(boxes)
        self.block_call: int | None = None
        self.block_thread: str | None = None
        self.calls = 0
        self._lock = threading.Lock()
        self.entered = threading.Event()
        self.release = threading.Event()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        with self._lock:
            self.calls += 1
            n = self.calls
            block = not self.entered.is_set() and (
                n == self.block_call
                or (
                    self.block_thread is not None
                    and threading.current_thread().name == self.block_thread
                )
            )
            if block:
                self.entered.set()
        if block:
            assert self.release.wait(WAIT), "test never released the detector"
        out = []
        for b in self.boxes:
            x1, y1, x2, y2 = b.as_ints()
            patch = rgb[y1:y2, x1:x2].astype(np.float32)
            if patch.size and patch.std() > 40:
                out.append(Detection(b, 0.9, "fake"))
        return out


class FakeTemplates:
    def templates(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        return [_vec(1) if b == FACE_A else _vec(2) for b in boxes]


class Race:
    def __init__(self, root: Path) -> None:
        init_root(root)
        cfg = root / "photoguard.toml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8").replace('action = "delete"', 'action = "vault"'),
            encoding="utf-8",
        )
        self.root = root
        self.settings: Settings = load_settings(root)
        self.detector = GatedDetector([FACE_A, FACE_B])
        self.pipe = Pipeline(
            root,
            self.settings,
            detector=self.detector,  # type: ignore[arg-type]
            templates=FakeTemplates(),  # type: ignore[arg-type]
            today=date.today,
        )
        (root / "c.csv").write_text(CSV, encoding="utf-8")
        import_csv(self.pipe.store, root / "c.csv")
        self.pipe.template_vault().add("1001", _vec(1), "enrol")
        self.originals: dict[str, np.ndarray] = {}
        self.n = 0

    def photo(self) -> Path:
        self.n += 1
        rng = np.random.default_rng(100 + self.n)
        img = np.full((200, 320, 3), 120, dtype=np.uint8)
        for b in (FACE_A, FACE_B):
            x1, y1, x2, y2 = b.as_ints()
            img[y1:y2, x1:x2] = rng.integers(0, 255, size=(y2 - y1, x2 - x1, 3), dtype=np.uint8)
        path = self.root / "inbox" / "juf" / f"IMG_{self.n:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path, quality=95)
        return path

    def process(self, path: Path) -> Any:
        original = np.asarray(Image.open(path).convert("RGB"))
        res = self.pipe.process_path(path, group="7")
        if res.sha256:
            self.originals[res.sha256] = original
        return res

    def withdraw_website(self) -> Any:
        changes = Registry(self.pipe.store).set_consent("1001", "website", False)
        return propagate_changes(
            self.root, self.settings, self.pipe.store, changes, pipeline=lambda: self.pipe
        )

    def assert_emma_gone_from_website(self) -> None:
        store = self.pipe.store
        live = store.query("SELECT * FROM outputs WHERE channel='website' AND withdrawn_at IS NULL")
        assert live, "the photos must still be published on the website, with Emma redacted"
        for r in live:
            assert "1001" not in json.loads(r["visible_pupils"]), r["path"]
            assert (
                store.one(
                    "SELECT 1 FROM output_pupils WHERE output_id=? AND pupil_id='1001'", (r["id"],)
                )
                is None
            )
        on_disk = {
            str(p.relative_to(self.root))
            for p in (self.root / "outbox" / "website").iterdir()
            if p.is_file()
        }
        assert on_disk == {r["path"] for r in live}, "outbox and ledger disagree"
        for r in live:
            img = np.asarray(Image.open(self.root / r["path"]).convert("RGB")).astype(int)
            orig = self.originals[r["source_sha256"]].astype(int)
            x1, y1, x2, y2 = FACE_A.as_ints()
            diff = float(np.abs(img[y1:y2, x1:x2] - orig[y1:y2, x1:x2]).mean())
            assert diff > 30, f"Emma visible in {r['path']}"
        # Emma keeps her Parro consent: still visible there
        parro = store.query(
            "SELECT visible_pupils FROM outputs WHERE channel='parro' AND withdrawn_at IS NULL"
        )
        assert parro and all(json.loads(r["visible_pupils"]) == ["1001"] for r in parro)


def _start(target: Any, name: str) -> tuple[threading.Thread, list[Any]]:
    box: list[Any] = []

    def run() -> None:
        box.append(target())

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t, box


@pytest.mark.parametrize("block_call", [1, 2], ids=["before-decision", "after-decision"])
@pytest.mark.parametrize("round_", range(3))
def test_change_while_photo_is_processed(tmp_path: Path, block_call: int, round_: int) -> None:
    """The photo thread stops inside processing (before or after it read consent and decided);
    the consent change and its propagation run to the end; then the photo thread continues."""
    race = Race(tmp_path / "school")
    race.detector.block_call = block_call
    photo = race.photo()
    worker, result = _start(lambda: race.process(photo), "photo")
    assert race.detector.entered.wait(WAIT)
    race.withdraw_website()  # completes while the photo is half-processed
    race.detector.release.set()
    worker.join(WAIT * 2)
    assert not worker.is_alive()
    assert result and result[0].status is PhotoStatus.PUBLISHED, result
    race.assert_emma_gone_from_website()


@pytest.mark.parametrize("round_", range(3))
def test_photo_while_change_is_propagated(tmp_path: Path, round_: int) -> None:
    """The reverse: the propagation stops inside its re-render of an earlier photo while a new
    photo of the pupil is processed and published; then the propagation continues."""
    race = Race(tmp_path / "school")
    first = race.process(race.photo())
    assert first.status is PhotoStatus.PUBLISHED
    race.detector.block_thread = "propagate"
    prop, result = _start(race.withdraw_website, "propagate")
    assert race.detector.entered.wait(WAIT)
    second = race.process(race.photo())  # runs while the propagation is blocked
    assert second.status is PhotoStatus.PUBLISHED
    race.detector.release.set()
    prop.join(WAIT * 2)
    assert not prop.is_alive()
    assert result and len(result[0].withdrawn) == 1 and result[0].withdrawn[0].replacement
    race.assert_emma_gone_from_website()


@pytest.mark.parametrize("seed", range(3))
def test_unsynchronised_change_and_photos(tmp_path: Path, seed: int) -> None:
    """No gates: a change lands at a random moment while several photos go through."""
    race = Race(tmp_path / "school")
    photos = [race.photo() for _ in range(4)]
    rng = random.Random(seed)
    delay = rng.uniform(0.0, 0.15)

    def later() -> Any:
        time.sleep(delay)
        return race.withdraw_website()

    changer, _ = _start(later, "change")
    for p in photos:
        assert race.process(p).status is PhotoStatus.PUBLISHED
    changer.join(WAIT * 2)
    assert not changer.is_alive()
    race.assert_emma_gone_from_website()

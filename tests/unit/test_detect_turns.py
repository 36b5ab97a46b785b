"""Turned passes (faces lying on their side): the geometry of turning a detection back, and the
rule that a turned box is never a second box on an upright face."""

from __future__ import annotations

import numpy as np
import pytest

from photoguard.config import EnsembleConfig, YuNetConfig
from photoguard.core.records import Box, Detection
from photoguard.photo.detect.base import turned_back, turned_new


def _marker_position(img: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(img)
    assert len(xs) == 1
    return int(xs[0]), int(ys[0])


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_turned_back_puts_a_point_where_it_was_in_the_upright_photo(k: int, factor: float) -> None:
    # a photo of 120 x 80 px seen at ``factor``; one marked pixel, turned as the pass turns it
    w, h = round(120 * factor), round(80 * factor)
    small = np.zeros((h, w), dtype=np.uint8)
    px, py = round(90 * factor), round(20 * factor)
    small[py, px] = 1
    tx, ty = _marker_position(np.rot90(small, k))
    d = Detection(
        box=Box(tx, ty, tx + 1, ty + 1),
        score=0.9,
        source="yunet?",
        landmarks=((tx + 0.5, ty + 0.5),) * 5,
    )
    back = turned_back(d, k, (w, h), factor)
    assert back.box.x1 == pytest.approx(px / factor) and back.box.y1 == pytest.approx(py / factor)
    assert back.box.x2 == pytest.approx((px + 1) / factor) and back.box.y2 == pytest.approx((py + 1) / factor)
    assert back.landmarks[0] == pytest.approx(((px + 0.5) / factor, (py + 0.5) / factor))
    assert back.source == "yunet"  # its own score rule (turn_score) replaces the doubt mark


def test_turned_back_turns_a_wide_box_into_a_tall_one() -> None:
    d = Detection(box=Box(10, 20, 70, 40), score=0.9, source="yunet", landmarks=None)
    back = turned_back(d, 1, (200, 100), 1.0)
    assert back.box.width == pytest.approx(20) and back.box.height == pytest.approx(60)


def test_a_turned_box_on_an_upright_face_is_dropped_one_elsewhere_kept() -> None:
    upright = [Detection(box=Box(100, 100, 200, 220), score=0.9, source="yunet", landmarks=None)]
    on_brows = Detection(box=Box(120, 80, 180, 130), score=0.8, source="yunet", landmarks=None)
    on_mouth = Detection(box=Box(130, 180, 175, 240), score=0.8, source="yunet", landmarks=None)
    around = Detection(box=Box(60, 60, 260, 260), score=0.8, source="yunet", landmarks=None)
    elsewhere = Detection(box=Box(300, 100, 360, 200), score=0.8, source="yunet", landmarks=None)
    touching = Detection(box=Box(198, 100, 260, 200), score=0.8, source="yunet", landmarks=None)
    kept = turned_new([on_brows, on_mouth, around, elsewhere, touching], upright)
    assert kept == [elsewhere, touching]


def test_default_ensemble_turns_yunet_and_plain_configs_do_not() -> None:
    members = EnsembleConfig().members
    assert [m.turns for m in members if isinstance(m, YuNetConfig)] == [[90, 270]]
    assert YuNetConfig().turns == []
    with pytest.raises(ValueError):
        YuNetConfig(turns=[45])  # type: ignore[list-item]


def test_an_unconfirmed_upright_box_does_not_hide_a_turned_face() -> None:
    # a lying face often leaves a weak, large upright box (unconfirmed): the turned box confirms it
    weak = Detection(box=Box(100, 100, 260, 200), score=0.35, source="yunet?", landmarks=None)
    lying = Detection(box=Box(110, 95, 250, 210), score=0.9, source="yunet", landmarks=None)
    assert turned_new([lying], [weak]) == [lying]
    confirmed = Detection(box=weak.box, score=0.35, source="yunet", landmarks=None)
    assert turned_new([lying], [confirmed]) == []

"""The motion gate that sends frames between scheduled detections to the detector, and the text
covers of a clip (pure: arrays and boxes)."""

from __future__ import annotations

import numpy as np

from photoguard.core.records import Box, Detection
from photoguard.photo.track import IouTracker
from photoguard.photo.video import MotionGate, _cover, _merged, _snapped


def _frame(*squares: tuple[int, int]) -> np.ndarray:
    rgb = np.full((270, 480, 3), 120, np.uint8)
    for x, y in squares:
        rgb[y : y + 40, x : x + 40] = 240
    return rgb


def test_the_gate_opens_for_new_motion_only() -> None:
    gate = MotionGate(480, 270)
    assert gate.moved(_frame((100, 100)), [])  # the first frame: nothing to compare with
    assert not gate.moved(_frame((100, 100)), [])  # nothing changed
    # the square moves: new motion where nothing moved before
    assert gate.moved(_frame((104, 100)), [])
    # it keeps moving: motion next to where it moved, not new
    assert not gate.moved(_frame((108, 100)), [])
    # a followed face moving inside its grown box does not open it either
    face = Box(120, 100, 160, 140)
    gate2 = MotionGate(480, 270)
    gate2.moved(_frame((120, 100)), [face])
    assert not gate2.moved(_frame((130, 100)), [face])
    # something turns up where all was still: new
    assert gate2.moved(_frame((130, 100), (350, 200)), [face])
    assert gate2.share < 0.3  # not a scene cut
    gate2.moved(np.zeros((270, 480, 3), np.uint8), [face])
    assert gate2.share > 0.3  # everything changed: a cut


def test_a_new_track_unsettles_the_tracker() -> None:
    tr = IouTracker(iou=0.2, gap=5)
    tr.update(0, [Detection(Box(0, 0, 40, 40), 0.9)])
    assert tr.unsettled
    tr.update(1, [Detection(Box(2, 0, 42, 40), 0.9)])
    assert not tr.unsettled and tr.open_boxes() == [Box(2, 0, 42, 40)]
    tr.update(2, [Detection(Box(4, 0, 44, 40), 0.9), Detection(Box(200, 0, 240, 40), 0.9)])
    assert tr.unsettled and len(tr.open_boxes()) == 2


def test_text_regions_snap_outward_and_merge_over_touching_spans() -> None:
    a = _snapped(Box(10.5, 3, 30.2, 17))
    assert a == Box(8, 0, 32, 24) and _snapped(Box(9, 1, 31, 18)) == a  # OCR jitter: the same box
    merged = _merged([(0, 20, a), (10, 30, a), (40, 50, a), (0, 20, Box(0, 0, 8, 8))])
    assert merged == ((0, 20, Box(0, 0, 8, 8)), (0, 30, a), (40, 50, a))


def test_text_boxes_are_filled_flat_in_a_copy() -> None:
    rgb = np.full((60, 80, 3), 200, np.uint8)
    rgb[20:30, 20:50] = np.random.default_rng(1).integers(0, 255, (10, 30, 3), dtype=np.uint8)
    out = _cover(rgb, [Box(18, 18, 52, 32)], fresh=False)
    assert out is not rgb and rgb[20:30, 20:50].std() > 20  # the source is left alone
    assert out[18:32, 18:52].reshape(-1, 3).std(axis=0).max() == 0  # one flat colour
    assert np.array_equal(out[0:10], rgb[0:10])

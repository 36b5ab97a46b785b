"""Large low-score YuNet boxes: never dropped without a second opinion (fake nets, no weights)."""

from __future__ import annotations

import numpy as np

from photoguard.config import YuNetConfig
from photoguard.core.records import Box, Detection
from photoguard.photo.detect import EnsembleDetector, YuNetDetector, fuse
from photoguard.photo.detect.base import UNCONFIRMED, is_unconfirmed, resolve, unconfirmed
from photoguard.photo.detect.yunet import LOW_RES_PX


class FakeYuNet:
    """Mimics cv2.FaceDetectorYN: per input width, fixed faces in input pixels (x, y, w, h, score)."""

    def __init__(self, faces: dict[int, list[tuple[float, float, float, float, float]]]) -> None:
        self.faces = faces
        self.width = 0

    def setInputSize(self, size: tuple[int, int]) -> None:
        self.width = size[0]

    def detect(self, img: np.ndarray) -> tuple[int, np.ndarray | None]:
        rows = [[x, y, w, h, *([x + w / 2, y + h / 2] * 5), s] for x, y, w, h, s in self.faces.get(self.width, [])]
        return (1, np.array(rows, np.float32)) if rows else (0, None)


class Fixed:
    """A detector member that always finds the same boxes."""

    name = "fixed"

    def __init__(self, dets: list[Detection]) -> None:
        self.dets = dets

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return list(self.dets)


IMG = np.zeros((200, 400, 3), np.uint8)


def yunet(faces: dict[int, list[tuple[float, float, float, float, float]]], sides: list[int]) -> YuNetDetector:
    net = FakeYuNet(faces)
    return YuNetDetector(YuNetConfig(score=0.3, long_sides=sides, large_score=0.5), net_factory=lambda: net)


def test_fuse_marks_a_cluster_unconfirmed_only_when_every_member_is() -> None:
    weak = Detection(Box(0, 0, 100, 100), 0.4, unconfirmed("yunet"))
    other = Detection(Box(5, 5, 105, 105), 0.35, "centerface")
    alone = Detection(Box(300, 0, 400, 100), 0.45, unconfirmed("yunet"))
    out = fuse([weak, other, alone], 0.4)
    assert len(out) == 2
    srcs = sorted(d.source for d in out)
    assert srcs == ["centerface+yunet", "yunet" + UNCONFIRMED]
    assert [d.box.x1 for d in resolve(out)] == [min(d.box.x1 for d in out)]
    assert is_unconfirmed(alone) and not is_unconfirmed(other)
    assert unconfirmed(unconfirmed("a")) == "a" + UNCONFIRMED


def test_large_weak_box_needs_a_second_opinion() -> None:
    # a 120 px box (input = photo size) at 0.35: large and weak
    weak = {400: [(100, 20, 120, 120, 0.35)]}
    assert yunet(weak, [400]).detect(IMG) == []  # nothing agrees: left out
    cands = yunet(weak, [400]).candidates(IMG)
    assert len(cands) == 1 and is_unconfirmed(cands[0])  # but offered to an ensemble
    # another detector finds the same face: kept, as one box
    cf = Fixed([Detection(Box(104, 24, 216, 136), 0.6, "centerface")])
    out = EnsembleDetector([yunet(weak, [400]), cf]).detect(IMG)
    assert len(out) == 1 and not is_unconfirmed(out[0]) and out[0].box.width > 100
    # a confident box of another scale agrees (800 px input: the same face at 2x)
    both = {400: [(100, 20, 120, 120, 0.35)], 800: [(200, 40, 240, 240, 0.8)]}
    out = yunet(both, [400, 800]).detect(IMG)
    assert len(out) == 1 and out[0].source == "yunet"
    # another detector finding something elsewhere confirms nothing
    far = Fixed([Detection(Box(0, 0, 30, 30), 0.9, "centerface")])
    out = EnsembleDetector([yunet(weak, [400]), far]).detect(IMG)
    assert [d.source for d in out] == ["centerface"]


def test_low_resolution_pass_boxes_fall_under_the_rule() -> None:
    # the 200x400 photo at a low-resolution pass (long side 200 <= LOW_RES_PX): a 30 px input
    # box is only 30 px in the input but 60 px in the photo; weak, so it needs a second opinion
    assert LOW_RES_PX >= 200
    low = {200: [(50, 10, 30, 30, 0.35)]}
    assert yunet(low, [200]).detect(IMG) == []
    strong = {200: [(50, 10, 30, 30, 0.7)]}
    out = yunet(strong, [200]).detect(IMG)
    assert len(out) == 1 and round(out[0].box.width) == 60
    # a small face in that pass (< 40 px in the photo) is not "large": kept at the plain score
    small = {200: [(50, 10, 15, 15, 0.35)]}
    assert len(yunet(small, [200]).detect(IMG)) == 1

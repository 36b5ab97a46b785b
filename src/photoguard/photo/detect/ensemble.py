"""Union of several detectors (recall first): every member's boxes, duplicates fused.

Members that offer ``candidates`` (unconfirmed boxes included) are asked for those, so a box one
member doubts is kept when another member finds the same face; what no member confirms is left
out after fusion (``resolve``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from photoguard.core.records import Detection
from photoguard.photo.detect.base import Detector, check_image, fuse, resolve

log = logging.getLogger(__name__)


class EnsembleDetector:
    name = "ensemble"

    def __init__(self, members: Sequence[Detector], nms_iou: float = 0.4) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self.nms_iou = nms_iou

    def warm_up(self) -> None:
        for m in self.members:
            warm = getattr(m, "warm_up", None)
            if callable(warm):
                warm()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        check_image(rgb)
        found: list[Detection] = []
        for m in self.members:
            candidates = getattr(m, "candidates", None)
            found.extend(candidates(rgb) if callable(candidates) else m.detect(rgb))
        return resolve(fuse(found, self.nms_iou))

"""Union of several detectors (recall first): every member's boxes, duplicates fused."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from photoguard.core.records import Detection
from photoguard.photo.detect.base import Detector, check_image, fuse

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
            found.extend(m.detect(rgb))
        return fuse(found, self.nms_iou)

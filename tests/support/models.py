"""Fake face models for tests: a detector that finds painted face patches and templates by box.

The service's subprocess tests run :mod:`tests.support.fake_cli`, which is the real command line
with these models injected through ``photoguard.cli.main(pipeline_factory=...)``; nothing in the
installed package can switch to them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from photoguard.core.records import Box, Detection

#: where the test photos paint their "faces"
FACE_A = Box(40, 40, 120, 130)
FACE_B = Box(200, 50, 280, 140)


def fake_vector(seed: int) -> np.ndarray:
    """A deterministic 128-d template with norm 0.5."""
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v) * 0.5


class FakeDetector:
    """Finds a face wherever a painted face patch (high-variance texture) is still present."""

    name = "fake"

    def __init__(self, boxes: Sequence[Box], delay: float = 0.0) -> None:
        self.boxes = list(boxes)
        self.calls = 0
        self.delay = delay

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = []
        for b in self.boxes:
            x1, y1, x2, y2 = b.as_ints()
            patch = rgb[y1:y2, x1:x2].astype(np.float32)
            if patch.size and patch.std() > 40:  # texture survives only when not redacted
                out.append(Detection(b, 0.9, "fake"))
        return out


class FakeTemplates:
    """Templates looked up by box; unknown boxes get a template nobody is enrolled with."""

    def __init__(self, by_box: dict[Box, np.ndarray]) -> None:
        self.by_box = by_box
        self.landmarks_seen: list[object] = []

    def templates(
        self, rgb: np.ndarray, boxes: Sequence[Box], landmarks: Sequence[object] | None = None
    ) -> list[np.ndarray]:
        if landmarks is not None:
            assert len(landmarks) == len(boxes), "one landmark set (or None) per box"
            self.landmarks_seen.extend(landmarks)
        return [self.by_box.get(b, fake_vector(999)) for b in boxes]

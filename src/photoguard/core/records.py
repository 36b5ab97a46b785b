"""Small frozen records shared by the pipeline stages.

Coordinates: ``Box`` is (x1, y1, x2, y2) in pixels of the *upright* image, x2/y2 exclusive,
origin top-left. Images are ``numpy`` arrays of shape (H, W, 3), dtype uint8, RGB order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def intersection(self, other: Box) -> float:
        w = min(self.x2, other.x2) - max(self.x1, other.x1)
        h = min(self.y2, other.y2) - max(self.y1, other.y1)
        return max(0.0, w) * max(0.0, h)

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def scaled(self, factor: float) -> Box:
        """The box grown (or shrunk) by ``factor`` around its centre."""
        cx, cy = self.center
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(cx - hw, cy - hh, cx + hw, cy + hh)

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
            min(max(self.x2, 0.0), float(width)),
            min(max(self.y2, 0.0), float(height)),
        )

    def as_ints(self) -> tuple[int, int, int, int]:
        """Outward-rounded integer box (never smaller than the float box)."""
        import math

        return (math.floor(self.x1), math.floor(self.y1), math.ceil(self.x2), math.ceil(self.y2))

    def to_list(self) -> list[int]:
        return list(self.as_ints())


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found by a detector. ``landmarks`` are 5 (x, y) points when the model gives them:
    right eye, left eye, nose tip, right mouth corner, left mouth corner (image coordinates)."""

    box: Box
    score: float
    source: str = ""
    landmarks: tuple[tuple[float, float], ...] | None = None


class PhotoStatus(StrEnum):
    PUBLISHED = "published"
    HELD = "held"
    REJECTED = "rejected"


class FaceAction(StrEnum):
    VISIBLE = "visible"
    REDACT = "redact"
    HOLD = "hold"


class MatchKind(StrEnum):
    MATCH = "match"  # confidently one enrolled pupil
    NEAR = "near"  # close to an enrolled pupil but not confident
    NONE = "none"  # nobody enrolled is close
    TOO_SMALL = "too_small"  # never matched: too few pixels


@dataclass(frozen=True, slots=True)
class Match:
    kind: MatchKind
    pupil_id: str | None = None  # set for MATCH and NEAR (the nearest pupil)
    distance: float | None = None
    runner_up: float | None = None


@dataclass(frozen=True, slots=True)
class Pupil:
    """A pupil in the consent registry. ``consents`` maps consent key -> bool (opt-in only)."""

    pupil_id: str
    first_name: str
    surname_prefix: str
    surname: str
    group: str
    left_on: date | None = None
    phone: str = ""
    consents: dict[str, bool] = field(default_factory=dict)

    def has_left(self, today: date) -> bool:
        return self.left_on is not None and self.left_on <= today

    def consents_to(self, key: str) -> bool:
        return self.consents.get(key, False) is True

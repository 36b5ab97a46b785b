"""Face detectors behind one interface; ``build_detector`` maps a config ``type`` to a class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from photoguard.config import CenterFaceConfig, EnsembleConfig, YuNetConfig
from photoguard.photo.detect.base import Detector, ModelError, ModelFile, fuse
from photoguard.photo.detect.centerface import CenterFaceDetector
from photoguard.photo.detect.ensemble import EnsembleDetector
from photoguard.photo.detect.yunet import YuNetDetector

__all__ = [
    "REGISTRY",
    "CenterFaceDetector",
    "Detector",
    "EnsembleDetector",
    "ModelError",
    "ModelFile",
    "YuNetDetector",
    "build_detector",
    "fuse",
]


def _build_centerface(cfg: Any) -> Detector:
    assert isinstance(cfg, CenterFaceConfig)
    return CenterFaceDetector(cfg)


def _build_yunet(cfg: Any) -> Detector:
    assert isinstance(cfg, YuNetConfig)
    return YuNetDetector(cfg)


def _build_ensemble(cfg: Any) -> Detector:
    assert isinstance(cfg, EnsembleConfig)
    return EnsembleDetector([build_detector(m) for m in cfg.members], nms_iou=cfg.nms_iou)


#: config ``type`` -> factory. Tests and plugins may add entries.
REGISTRY: dict[str, Callable[[Any], Detector]] = {
    "centerface": _build_centerface,
    "yunet": _build_yunet,
    "ensemble": _build_ensemble,
}


def build_detector(cfg: Any) -> Detector:
    """A detector for one ``DetectorConfig``; models load lazily at the first ``detect``.

    Raises ValueError for an unknown ``type``."""
    kind = getattr(cfg, "type", None)
    factory = REGISTRY.get(kind) if isinstance(kind, str) else None
    if factory is None:
        raise ValueError(f"unknown detector type {kind!r}; known: {', '.join(sorted(REGISTRY))}")
    return factory(cfg)

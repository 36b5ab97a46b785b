"""Text in the image: find text lines, read them (offline OCR, no telemetry).

Two ONNX models from the Apache-2.0 ``rapidocr`` wheel (PP-OCRv6 small detection and
recognition) run in onnxruntime. rapidocr's own Python code is never imported (it would pull a
configuration stack and a network client): the model files are located through import metadata,
checked against a pinned sha256 and loaded from those same bytes, as the face detectors are.

Cost is kept down by detecting text on a reduced copy (``det_long_side``, 960 px by default) and
running recognition only on the detected lines, each cut from the full-size photo.

onnxruntime writes a device id under ``~/.cache/Microsoft/`` and sends usage events unless
``ORT_DISABLE_TELEMETRY=1`` is in the environment when it is imported: sessions are made by
``photoguard.photo.onnxmodel.ort_session``, which forces that value (a user's ``0`` is overridden:
photoguard never phones home) before the first import; ``photoguard/__init__.py`` does the same
for any other importer.

``TextBox`` (defined in ``photoguard.core.textpolicy``, which decides what to cover) carries
``char_spans``: per character of ``text``, where it sits along the line as
fractions (0 = line start, 1 = line end) so that a policy can cover one word of a line.

In the pipeline (``photoguard.photo.pipeline``): after decode and face detection, when
``settings.text.enabled``, ``Pipeline`` calls ``TextFinder.find_text(rgb)`` once per photo (a
``ModelError`` or any other failure holds the photo); per channel
``textpolicy.decide_text(lines, registry pupils, channel, today, settings.text)`` gives the
regions and ``cover_text`` fills them next to the face redaction, before encoding; the publish
audit event counts the regions per reason (never the text). The engine is an ``OnnxOcr`` built
from ``settings.text``; tests inject a fake finder (``tests/support/text.py``).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from photoguard.core.records import Box
from photoguard.core.textpolicy import TextBox, TextRedaction
from photoguard.photo.detect.base import ModelError, ModelFile, check_image, read_verified
from photoguard.photo.onnxmodel import ort_session

log = logging.getLogger(__name__)

__all__ = [
    "DET_MODEL",
    "REC_MODEL",
    "OcrEngine",
    "OnnxOcr",
    "TextBox",
    "TextFinder",
    "cover_text",
    "find_text",
]

@runtime_checkable
class OcrEngine(Protocol):
    def find_text(self, rgb: np.ndarray) -> list[TextBox]:
        """Every text line in an upright RGB uint8 image, in its pixel coordinates."""
        ...


DET_MODEL = ModelFile(
    package="rapidocr",
    distribution="rapidocr",
    relpath="models/PP-OCRv6_det_small.onnx",
    sha256="090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
)
REC_MODEL = ModelFile(
    package="rapidocr",
    distribution="rapidocr",
    relpath="models/PP-OCRv6_rec_small.onnx",
    sha256="6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
)

_REC_HEIGHT = 48
_REC_MAX_WIDTH = 48 * 40
_REC_BATCH = 6


def _session(data: bytes, threads: int) -> Any:
    return ort_session(data, threads, "text")


def _order_quad(pts: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left."""
    pts = pts[np.argsort(pts[:, 0])]
    left, right = pts[:2], pts[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


class OnnxOcr:
    """PP-OCRv6 detection + recognition in onnxruntime. Models load on first use (thread-safe);
    a missing or altered model file raises ``ModelError`` (the caller holds the photo)."""

    def __init__(
        self,
        *,
        det_long_side: int = 960,
        det_thresh: float = 0.3,
        box_thresh: float = 0.3,
        unclip_ratio: float = 1.6,
        min_line_px: int = 8,
        max_lines: int = 200,
        refine_below: float = 0.6,
        max_refine: int = 3,
        refine_long_side: int = 640,
        threads: int = 2,
    ) -> None:
        self.det_long_side = det_long_side
        self.det_thresh = det_thresh
        self.box_thresh = box_thresh
        self.unclip_ratio = unclip_ratio
        self.min_line_px = min_line_px
        self.max_lines = max_lines
        self.refine_below = refine_below
        self.max_refine = max_refine
        self.refine_long_side = refine_long_side
        self.threads = threads
        self._lock = threading.Lock()
        self._det: Any = None
        self._rec: Any = None
        self._chars: list[str] = []

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        with self._lock:
            if self._det is not None:
                return
            det = _session(read_verified(DET_MODEL.locate(), DET_MODEL.sha256), self.threads)
            rec = _session(read_verified(REC_MODEL.locate(), REC_MODEL.sha256), self.threads)
            meta = rec.get_modelmeta().custom_metadata_map.get("character", "")
            chars = meta.splitlines()
            n_classes = rec.get_outputs()[0].shape[-1]
            table = ["", *chars, " "]
            if not chars or (isinstance(n_classes, int) and n_classes != len(table)):
                raise ModelError("text recognition model has no usable character table")
            self._chars = table
            self._rec = rec
            self._det = det

    # -- detection -----------------------------------------------------------------------

    def _detect(self, bgr: np.ndarray, long_side: int | None = None) -> list[tuple[np.ndarray, float]]:
        h, w = bgr.shape[:2]
        factor = min(2.0, (long_side or self.det_long_side) / float(max(h, w)))
        dw = max(32, round(w * factor / 32) * 32)
        dh = max(32, round(h * factor / 32) * 32)
        interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        small = cv2.resize(bgr, (dw, dh), interpolation=interp)
        x = (small.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        prob = np.asarray(self._det.run(None, {self._det.get_inputs()[0].name: x})[0])[0, 0]
        mask = (prob > self.det_thresh).astype(np.uint8)
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = w / float(dw), h / float(dh)
        out: list[tuple[np.ndarray, float]] = []
        for c in contours:
            if len(c) < 3:
                continue
            rect = cv2.minAreaRect(c)
            if min(rect[1]) < 3:
                continue
            x0, y0, bw, bh = cv2.boundingRect(c)
            region = np.zeros((bh, bw), np.uint8)
            cv2.fillPoly(region, [c.reshape(-1, 2) - [x0, y0]], 1)
            patch = prob[y0 : y0 + bh, x0 : x0 + bw]
            score = float(cv2.mean(patch, region)[0])
            if score < self.box_thresh:
                continue
            rw, rh = rect[1]
            dist = rw * rh * self.unclip_ratio / (2 * (rw + rh))
            grown = (rect[0], (rw + 2 * dist, rh + 2 * dist), rect[2])
            pts = cv2.boxPoints(grown).astype(np.float32)
            pts[:, 0] = np.clip(pts[:, 0] * sx, 0, w)
            pts[:, 1] = np.clip(pts[:, 1] * sy, 0, h)
            quad = _order_quad(pts)
            side = min(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[0] - quad[1]))
            if side < self.min_line_px:
                continue
            out.append((quad, score))
        out.sort(key=lambda t: -t[1])
        return out[: self.max_lines]

    # -- recognition ---------------------------------------------------------------------

    @staticmethod
    def _crop(bgr: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The line cut upright from the photo, and its quad reordered to reading direction."""
        width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[3] - quad[2])))
        height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
        width, height = max(width, 1), max(height, 1)
        dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
        m = cv2.getPerspectiveTransform(quad, dst)
        crop = cv2.warpPerspective(bgr, m, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
        if height >= 1.5 * width:  # vertical line: read it turned a quarter anticlockwise
            return np.rot90(crop).copy(), quad[[1, 2, 3, 0]]
        return crop, quad

    def _recognise(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float, tuple[tuple[float, float], ...]]]:
        results: list[tuple[str, float, tuple[tuple[float, float], ...]]] = [("", 0.0, ())] * len(crops)
        widths = [
            min(_REC_MAX_WIDTH, max(8, math.ceil(_REC_HEIGHT * c.shape[1] / max(1, c.shape[0])))) for c in crops
        ]
        order = sorted(range(len(crops)), key=lambda i: widths[i])
        name = self._rec.get_inputs()[0].name
        for start in range(0, len(order), _REC_BATCH):
            idx = order[start : start + _REC_BATCH]
            batch_w = max(max(widths[i] for i in idx), _REC_HEIGHT * 4)
            batch = np.zeros((len(idx), 3, _REC_HEIGHT, batch_w), np.float32)
            for k, i in enumerate(idx):
                img = cv2.resize(crops[i], (widths[i], _REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
                batch[k, :, :, : widths[i]] = (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
            probs = np.asarray(self._rec.run(None, {name: batch})[0])
            steps = probs.shape[1]
            for k, i in enumerate(idx):
                results[i] = self._decode(probs[k], batch_w / float(steps) / widths[i])
        return results

    def _decode(self, probs: np.ndarray, step_frac: float) -> tuple[str, float, tuple[tuple[float, float], ...]]:
        best = probs.argmax(axis=1)
        conf = probs.max(axis=1)
        text: list[str] = []
        scores: list[float] = []
        spans: list[tuple[float, float]] = []
        prev = 0
        for t, (k, p) in enumerate(zip(best.tolist(), conf.tolist(), strict=True)):
            if k != prev and k != 0 and k < len(self._chars):
                text.append(self._chars[k])
                scores.append(float(p))
                spans.append((min(1.0, t * step_frac), min(1.0, (t + 1) * step_frac)))
            elif k == prev and k != 0 and spans:
                spans[-1] = (spans[-1][0], min(1.0, (t + 1) * step_frac))
            prev = k
        if not text:
            return "", 0.0, ()
        return "".join(text), float(np.mean(scores)), tuple(spans)

    # -- public --------------------------------------------------------------------------

    def _read(self, bgr: np.ndarray, found: list[tuple[np.ndarray, float]]) -> list[TextBox]:
        cut = [self._crop(bgr, quad) for quad, _ in found]
        read = self._recognise([c for c, _ in cut])
        boxes: list[TextBox] = []
        for (quad, det_score), (_, ordered), (raw, score, spans) in zip(found, cut, read, strict=True):
            xs, ys = quad[:, 0], quad[:, 1]
            box = Box(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
            poly = tuple((float(x), float(y)) for x, y in ordered)
            text = raw.strip()
            boxes.append(
                TextBox(
                    box=box,
                    text=text,
                    score=score if text else 0.0,
                    polygon=(poly[0], poly[1], poly[2], poly[3]),
                    det_score=det_score,
                    char_spans=spans if text == raw else _strip_spans(raw, spans),
                )
            )
        return boxes

    def _refine(self, bgr: np.ndarray, tb: TextBox) -> list[TextBox]:
        """Detect again inside a line that read badly, at a finer scale (on the reduced copy a
        line can merge with its surroundings into one block that reads as nonsense)."""
        h, w = bgr.shape[:2]
        m = 0.05 * max(tb.box.width, tb.box.height)
        x1, y1 = max(0, int(tb.box.x1 - m)), max(0, int(tb.box.y1 - m))
        x2, y2 = min(w, int(tb.box.x2 + m) + 1), min(h, int(tb.box.y2 + m) + 1)
        if x2 - x1 < 16 or y2 - y1 < 16:
            return []
        crop = np.ascontiguousarray(bgr[y1:y2, x1:x2])
        found = [(quad + np.array([x1, y1], np.float32), sc) for quad, sc in self._detect(crop, self.refine_long_side)]
        return self._read(bgr, found) if found else []

    def find_text(self, rgb: np.ndarray) -> list[TextBox]:
        check_image(rgb)
        self.load()
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        found = self._detect(bgr)
        if not found:
            return []
        boxes = self._read(bgr, found)
        long_side = float(max(bgr.shape[:2]))
        # lines the detector is sure of but that read badly, largest first: look closer (a few,
        # and only where the reduced copy was coarser than the line's own crop would be)
        todo = sorted(
            (
                k
                for k, b in enumerate(boxes)
                if b.score < self.refine_below
                and b.det_score >= 0.5
                and max(b.box.width, b.box.height) * 1.1 < long_side
                and long_side > self.det_long_side
            ),
            key=lambda k: -boxes[k].box.area,
        )[: self.max_refine]
        for k in todo:
            better = self._refine(bgr, boxes[k])
            if better and max(b.score for b in better) > boxes[k].score:
                boxes[k : k + 1] = [boxes[k], *better]  # keep the block too: its policy may still apply
        return boxes


def _strip_spans(text: str, spans: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    lead = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return spans[lead:end]


class TextFinder:
    """The pipeline's handle: one engine, loaded lazily; tests inject a fake engine."""

    def __init__(self, engine: OcrEngine | None = None) -> None:
        self._engine = engine

    @property
    def engine(self) -> OcrEngine:
        if self._engine is None:
            self._engine = OnnxOcr()
        return self._engine

    def find_text(self, rgb: np.ndarray) -> list[TextBox]:
        return self.engine.find_text(rgb)


_default = TextFinder()


def find_text(rgb: np.ndarray, engine: OcrEngine | None = None) -> list[TextBox]:
    """Every text line in the photo (``engine`` defaults to a shared, lazily loaded ``OnnxOcr``)."""
    return (engine or _default.engine).find_text(rgb)


def cover_text(rgb: np.ndarray, regions: Sequence[TextRedaction]) -> np.ndarray:
    """A copy of ``rgb`` with every region filled solid (irreversibly): one flat colour per region,
    the mean of a thin ring around it quantised to steps of 32 (so no text colour survives)."""
    check_image(rgb)
    out = rgb.copy()
    h, w = rgb.shape[:2]
    for r in regions:
        pad = max(3, int(0.15 * max(1.0, min(r.box.width, r.box.height))))
        bx1, by1, bx2, by2 = r.box.as_ints()
        x0, y0 = max(0, bx1 - pad - 2), max(0, by1 - pad - 2)
        x3, y3 = min(w, bx2 + pad + 2), min(h, by2 + pad + 2)
        if x3 <= x0 or y3 <= y0:
            continue
        mask = np.zeros((y3 - y0, x3 - x0), np.uint8)
        if r.polygon is not None:
            pts = np.array(r.polygon, np.float64) - [x0, y0]
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
        else:
            mask[max(0, by1 - y0) : max(0, by2 - y0), max(0, bx1 - x0) : max(0, bx2 - x0)] = 1
        if not mask.any():
            continue
        # one pixel more all round: a rounded polygon edge must not leave a sliver of a letter
        inside = cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(bool)
        ring = cv2.dilate(mask, np.ones((2 * pad + 3, 2 * pad + 3), np.uint8)).astype(bool) & ~inside
        roi = rgb[y0:y3, x0:x3]
        colour = roi[ring].mean(axis=0) if ring.any() else np.array([128.0, 128.0, 128.0])
        colour = (np.floor(colour / 32) * 32 + 16).clip(0, 255).astype(np.uint8)
        out[y0:y3, x0:x3][inside] = colour
    return out

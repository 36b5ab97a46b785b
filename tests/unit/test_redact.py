"""Redaction geometry and irreversibility on small synthetic images."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photoguard.config import RedactConfig, RedactMethod, RedactOutline
from photoguard.core.records import Box
from photoguard.photo.redact import MIN_GROW, redact, redaction_mask, solid_fill

SOLID = RedactConfig(method=RedactMethod.SOLID, grow=1.4)
MOSAIC = RedactConfig(method=RedactMethod.PIXELATE, grow=1.4)


def noise_image(h: int = 120, w: int = 160, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_mask_is_an_ellipse_covering_the_box() -> None:
    box = Box(40, 30, 80, 90)  # 40 wide, 60 high, centre (60, 60)
    m = redaction_mask((120, 160), [box], 1.6, outline=RedactOutline.ELLIPSE)
    assert m.dtype == bool and m.shape == (120, 160)
    assert m[30:90, 40:80].all()  # the whole box
    ys, xs = np.nonzero(m)
    assert xs.min() >= 60 - 32 - 1 and xs.max() <= 60 + 32  # semi-axis 0.8 * 40
    assert ys.min() >= 60 - 48 - 1 and ys.max() <= 60 + 48
    # an ellipse, not a rectangle: the grown box's corners stay clear
    assert not m[13, 29] and not m[106, 91]
    area = m.sum()
    assert area == pytest.approx(math.pi * 32 * 48, rel=0.08)


def test_grow_below_sqrt2_still_covers_box_corners() -> None:
    box = Box(20, 20, 60, 60)
    m = redaction_mask((100, 100), [box], 1.0)
    assert m[20:60, 20:60].all()
    assert pytest.approx(math.sqrt(2)) == MIN_GROW


def test_mask_clipped_at_border_and_tiny_faces() -> None:
    m = redaction_mask((50, 50), [Box(-10, -10, 10, 10)], 1.4)
    assert m[0, 0] and m[:10, :10].all()
    tiny = redaction_mask((50, 50), [Box(20.2, 20.2, 21.0, 21.1)], 1.4)
    assert tiny[20, 20]
    assert not redaction_mask((50, 50), [Box(100, 100, 120, 120)], 1.4).any()
    assert not redaction_mask((50, 50), [], 1.4).any()


def test_solid_redaction_is_flat_and_only_inside() -> None:
    rgb = noise_image()
    box = Box(50, 30, 90, 80)
    out = redact(rgb, [box], SOLID, seed=0)
    m = redaction_mask(rgb.shape[:2], [box], SOLID.grow)
    assert out is not rgb and out.dtype == np.uint8 and out.shape == rgb.shape
    assert (out[~m] == rgb[~m]).all()
    colours = np.unique(out[m].reshape(-1, 3), axis=0)
    assert len(colours) == 1  # zero information about the face
    assert (rgb[50:60, 60:70] != out[50:60, 60:70]).any()


def test_solid_ignores_face_content() -> None:
    a = noise_image(seed=1)
    b = a.copy()
    box = Box(50, 30, 90, 80)
    b[30:80, 50:90] = 255 - b[30:80, 50:90]  # a different "face", same surroundings
    ra, rb = redact(a, [box], SOLID, seed=0), redact(b, [box], SOLID, seed=0)
    assert (ra == rb).all()


def test_mosaic_blocks_are_coarse_and_noisy() -> None:
    rgb = noise_image(200, 200)
    box = Box(60, 60, 140, 140)  # 80 px face -> 20 px blocks
    out = redact(rgb, [box], MOSAIC, seed=3)
    m = redaction_mask(rgb.shape[:2], [box], MOSAIC.grow)
    assert (out[~m] == rgb[~m]).all()
    inner = out[80:120, 80:120]
    # at most a handful of distinct blocks across the face centre
    assert len(np.unique(inner.reshape(-1, 3), axis=0)) <= 9
    # noisy: a different seed changes the result, the same seed reproduces it
    assert (redact(rgb, [box], MOSAIC, seed=3) == out).all()
    assert (redact(rgb, [box], MOSAIC, seed=4) != out).any()


def test_mosaic_small_face_still_few_blocks() -> None:
    rgb = noise_image(60, 60)
    box = Box(20, 20, 35, 35)  # 15 px face
    out = redact(rgb, [box], MOSAIC, seed=0)
    m = redaction_mask(rgb.shape[:2], [box], MOSAIC.grow)
    assert len(np.unique(out[m].reshape(-1, 3), axis=0)) <= 36


def test_solid_fill_is_neutral_grey_on_mask() -> None:
    rgb = noise_image()
    box = Box(10, 10, 30, 40)
    out = solid_fill(rgb, [box], 1.4)
    m = redaction_mask(rgb.shape[:2], [box], 1.4)
    assert (out[m] == 128).all() and (out[~m] == rgb[~m]).all()
    assert (rgb == noise_image()).all()  # input untouched


def test_redact_no_boxes_is_a_copy_and_bad_input() -> None:
    rgb = noise_image()
    out = redact(rgb, [], SOLID, seed=0)
    assert (out == rgb).all() and out is not rgb
    with pytest.raises(ValueError):
        redact(np.zeros((5, 5), np.uint8), [], SOLID, seed=0)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-20, 120),
    st.floats(-20, 80),
    st.floats(1, 60),
    st.floats(1, 60),
    st.sampled_from([SOLID, MOSAIC]),
)
def test_box_always_fully_redacted(
    x: float, y: float, w: float, h: float, cfg: RedactConfig
) -> None:
    rgb = noise_image(80, 120)
    box = Box(x, y, x + w, y + h)
    out = redact(rgb, [box], cfg, seed=0)
    m = redaction_mask(rgb.shape[:2], [box], cfg.grow)
    x1, y1, x2, y2 = box.clipped(120, 80).as_ints()
    # every pixel whose centre lies inside the box is in the mask
    cx1, cy1 = max(0, math.ceil(x - 0.5)), max(0, math.ceil(y - 0.5))
    cx2, cy2 = min(120, math.floor(x + w - 0.5) + 1), min(80, math.floor(y + h - 0.5) + 1)
    if cx2 > cx1 and cy2 > cy1:
        assert m[cy1:cy2, cx1:cx2].all()
    assert (out[~m] == rgb[~m]).all()
    assert x1 <= x2 and y1 <= y2


def test_mosaic_small_face_blocks_at_least_min_block() -> None:
    from photoguard.photo.redact import MIN_BLOCK

    rgb = noise_image(80, 80)
    box = Box(30, 30, 42, 42)  # 12 px face: a quarter would be 3 px blocks
    out = redact(rgb, [box], MOSAIC, seed=0)
    assert MIN_BLOCK >= 8
    row = out[36, 30:42]
    changes = int((np.diff(row.astype(np.int16), axis=0) != 0).any(axis=1).sum())
    assert changes <= 2  # at most 2 block edges across a 12 px face

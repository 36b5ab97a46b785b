"""Redaction geometry and irreversibility on small synthetic images."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photoguard.config import RedactConfig, RedactMethod, RedactOutline
from photoguard.core.records import Box
from photoguard.photo.redact import (
    DARK_LUMA,
    LIGHT_LUMA,
    MAX_LUMA_TERM,
    MIN_GROW,
    contrast_colour,
    luma_term,
    redact,
    redaction_mask,
    solid_fill,
)

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


def test_solid_ignores_face_content_beyond_its_brightness_class() -> None:
    a = noise_image(seed=1)
    b = a.copy()
    box = Box(50, 30, 90, 80)
    b[30:80, 50:90] = 255 - b[30:80, 50:90]  # a different "face" of the same brightness class
    ra, rb = redact(a, [box], SOLID, seed=0), redact(b, [box], SOLID, seed=0)
    assert (ra == rb).all()
    c = a.copy()
    c[30:80, 50:90] //= 8  # a much darker face: the fill may be another shade, still flat
    rc = redact(c, [box], SOLID, seed=0)
    m = redaction_mask(a.shape[:2], [box], SOLID.grow)
    assert len(np.unique(rc[m].reshape(-1, 3), axis=0)) == 1 and (rc[~m] == c[~m]).all()


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


def test_solid_fill_is_neutral_grey_on_mask_unless_as_bright_as_the_face() -> None:
    rgb = noise_image()
    rgb[10:40, 10:30] //= 12  # a dark face (luma ~10): neutral grey differs clearly
    box = Box(10, 10, 30, 40)
    out = solid_fill(rgb, [box], 1.4)
    m = redaction_mask(rgb.shape[:2], [box], 1.4)
    assert (out[m] == 128).all() and (out[~m] == rgb[~m]).all()
    noisy = noise_image()  # a face of mean luma ~128, as bright as neutral grey: the dark shade
    out = solid_fill(noisy, [box], 1.4)
    assert (out[m] == round(DARK_LUMA)).all() and (out[~m] == noisy[~m]).all()
    assert (noisy == noise_image()).all()  # input untouched


def smooth_face_scene(skin: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, Box]:
    """A smooth face (gentle shading, +-3 levels of noise) on a background of the same colour:
    the ring outside the outline is as bright as the face."""
    rng = np.random.default_rng(seed)
    h, w = 240, 240
    yy = np.linspace(-1.0, 1.0, h)[:, None]
    shade = 6.0 * yy + rng.normal(0.0, 3.0, (h, w))
    rgb = np.clip(np.array(skin, dtype=np.float64)[None, None, :] + shade[:, :, None], 0, 255)
    return rgb.astype(np.uint8), Box(80, 70, 160, 170)


@pytest.mark.parametrize("skin", [(214, 170, 150), (120, 84, 60), (46, 32, 26)])
def test_solid_fill_changes_a_smooth_face_by_ssim(skin: tuple[int, int, int]) -> None:
    from skimage.metrics import structural_similarity

    rgb, box = smooth_face_scene(skin)
    out = redact(rgb, [box], SOLID, seed=0)
    x1, y1, x2, y2 = box.as_ints()
    inside = out[y1:y2, x1:x2].reshape(-1, 3)
    assert len(np.unique(inside, axis=0)) == 1  # still one flat colour
    grey = [cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY) for img in (rgb, out)]
    assert structural_similarity(grey[0], grey[1], data_range=255, win_size=7) < 0.6
    face = float(grey[0].mean())
    assert luma_term(face, float(grey[1].mean())) <= MAX_LUMA_TERM + 0.02
    # the ring colour alone (what the fill was before) would look the same to SSIM
    ring = np.round(np.array(skin) / 32) * 32
    assert luma_term(face, float(ring @ [0.299, 0.587, 0.114])) > 0.9


def test_contrast_colour_keeps_a_contrasting_colour_and_keeps_the_hue() -> None:
    navy = np.array([32, 32, 96], np.uint8)
    assert (contrast_colour(navy, 200.0) == navy).all()  # already far darker than the face
    skin = np.array([224, 160, 128], np.uint8)
    dark = contrast_colour(skin, 170.0).astype(float)
    assert dark @ [0.299, 0.587, 0.114] == pytest.approx(DARK_LUMA, abs=1.0)
    assert dark[0] > dark[1] > dark[2]  # same hue order as the ring colour
    light = contrast_colour(np.array([40, 30, 20], np.uint8), 35.0).astype(float)
    assert light @ [0.299, 0.587, 0.114] == pytest.approx(LIGHT_LUMA, abs=1.0)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    st.floats(0.0, 255.0),
)
def test_contrast_colour_always_differs_in_brightness(colour: tuple[int, int, int], face: float) -> None:
    out = contrast_colour(np.array(colour, np.uint8), face)
    assert out.dtype == np.uint8 and out.shape == (3,)
    assert luma_term(face, float(out.astype(float) @ [0.299, 0.587, 0.114])) <= MAX_LUMA_TERM + 1e-9


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

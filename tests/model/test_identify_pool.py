"""dlib's own descriptor engine: the worker pool gives exactly the in-process templates (model tier)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from photoguard.core.records import Box
from photoguard.photo.identify import POOL_MIN_FACES, TemplateModel
from tests.support.shared import shared_path


def test_pool_templates_equal_in_process_templates() -> None:
    img = np.asarray(Image.open(shared_path("faces", "frexamples", "all", "test__obama_and_biden.jpg")).convert("RGB"))
    boxes = [Box(756, 386, 935, 650), Box(1144, 362, 1327, 606), Box(1630, 1046, 1782, 1226)] * 2
    assert len(boxes) >= POOL_MIN_FACES
    local = TemplateModel(workers=0, engine="dlib").templates(img, boxes)
    pooled_model = TemplateModel(workers=2, engine="dlib")
    try:
        pooled = pooled_model.templates(img, boxes)
        assert pooled_model._pool is not None, "the pool path was not taken"
    finally:
        pooled_model.close()
    assert len(pooled) == len(local)
    for a, b in zip(local, pooled, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # order is kept: the two faces of different people differ, repeats are equal
    assert np.linalg.norm(pooled[0] - pooled[1]) > 0.3
    np.testing.assert_allclose(pooled[0], pooled[3], atol=1e-6)


def test_start_spawns_the_workers_before_the_first_photo() -> None:
    model = TemplateModel(workers=2, engine="dlib")
    try:
        model.start()
        pool = model._pool
        assert pool is not None and model._models is not None
        assert len(pool._processes) == 2 and all(p.is_alive() for p in pool._processes.values())
    finally:
        model.close()
    assert model._pool is None


def test_start_without_workers_loads_models_only() -> None:
    model = TemplateModel(workers=0, engine="dlib")
    model.start()
    assert model._models is not None and model._pool is None


def test_the_opencv_engine_starts_no_processes() -> None:
    model = TemplateModel(workers=2)
    try:
        model.start()
        assert model.engine == "opencv" and model._pool is None
    finally:
        model.close()

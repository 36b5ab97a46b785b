"""FOR TESTS ONLY. Fake face models for the watch service's subprocess tests.

A test starts ``python -m photoguard --root R watch`` with the environment variable
``PHOTOGUARD_TESTING_FAKE_MODELS`` set to the *same absolute root path* ``R``; the ``watch`` and
``review`` commands then build their :class:`~photoguard.pipeline.Pipeline` with
:class:`FakeDetector` and :class:`FakeTemplates` below instead of the real models. The value
must name the root, so a stray global variable cannot switch a production service to fake
models; when it is active the service logs a warning and ``photoguard status`` shows
``fake_models: true``. Never set it outside tests: the fake detector finds only the faces it was
told about.

``PHOTOGUARD_TESTING_DETECT_SECONDS`` makes each detection sleep that long (to widen the window
in which a crash test kills the service mid-photo).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photoguard.config import Settings
from photoguard.records import Box, Detection

if TYPE_CHECKING:
    from photoguard.pipeline import Pipeline

log = logging.getLogger(__name__)

ENV_FAKE = "PHOTOGUARD_TESTING_FAKE_MODELS"
ENV_DELAY = "PHOTOGUARD_TESTING_DETECT_SECONDS"
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

    def templates(self, rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        return [self.by_box.get(b, fake_vector(999)) for b in boxes]


def fake_models_requested(root: Path) -> bool:
    """True when the test hook is set for exactly this root."""
    value = os.environ.get(ENV_FAKE, "")
    if not value:
        return False
    try:
        return Path(value).resolve() == root.resolve()
    except OSError:
        return False


def pipeline_from_env(root: Path, settings: Settings) -> Pipeline | None:
    """A pipeline with fake models when the test hook names ``root``; otherwise ``None``."""
    if not fake_models_requested(root):
        return None
    from photoguard.pipeline import Pipeline

    log.warning(
        "TEST MODE: fake face models are in use (%s is set); never use this in production", ENV_FAKE
    )
    delay = float(os.environ.get(ENV_DELAY, "0") or 0)
    return Pipeline(
        root,
        settings,
        detector=FakeDetector([FACE_A, FACE_B], delay=delay),
        templates=FakeTemplates({FACE_A: fake_vector(1), FACE_B: fake_vector(2)}),  # type: ignore[arg-type]
    )


#: The real blocklists in ``../shared/dns/lists`` and the category each one blocks (tests and
#: ``bench/dns_bench.py`` read the files from there; they are never copied into the repository).
SHARED_DNS_LIST_CATEGORIES: dict[str, str] = {
    "porn_sinfonietta.hosts": "porn",
    "porn_top1m_chadmayfield.domains": "porn",
    "phishing_blocklistproject.domains": "phishing",
    "ut1_agressif.domains": "hate",
    "ut1_vpn.domains": "vpn",
    "ut1_redirector.domains": "proxy",
    "ut1_residential-proxies.domains": "proxy",
    "ut1_doh.domains": "doh",
    "doh_vpn_proxy_bypass_hagezi.domains": "doh",
}


def shared_dns_lists(folder: Path) -> list[tuple[str, Path]]:
    """(category, path) for each known shared list, in the order above."""
    return [(category, folder / name) for name, category in SHARED_DNS_LIST_CATEGORIES.items()]

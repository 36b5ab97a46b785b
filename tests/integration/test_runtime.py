"""The allocator tuning keeps large pixel buffers' pages: a pipeline-like loop page-faults far less."""

from __future__ import annotations

import subprocess
import sys

import pytest

# resize, blob, float conversion and JPEG round trip at three detector sizes, as one photo does
SCRIPT = """
import resource, sys
import cv2
import numpy as np
from photoguard.service.runtime import tune_allocator
if sys.argv[1] == "tuned":
    assert tune_allocator() and tune_allocator()
img = np.random.default_rng(0).integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
def work():
    for side in (1024, 1600, 2560):
        small = cv2.resize(img, (side, side * 3 // 4))
        blob = cv2.dnn.blobFromImage(small)
        half = small.astype(np.float32) * 0.5
        ok, enc = cv2.imencode(".jpg", small)
        back = cv2.imdecode(enc, cv2.IMREAD_COLOR)
work()  # warm-up: the heap grows once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    work()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_tuned_allocator_page_faults_far_less() -> None:
    plain, tuned = faults("plain"), faults("tuned")
    assert plain > 50_000  # untuned, every large buffer is a fresh mapping (measured ~150,000)
    assert tuned < plain / 2  # measured ~47,000


def test_photo_commands_tune_and_others_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from photoguard.cli import app as cli

    calls: list[str] = []
    monkeypatch.setattr(cli, "tune_allocator", lambda: calls.append("tuned") or True)
    assert {"process", "watch"} <= cli.PHOTO_COMMANDS
    assert cli.main(["--root", "/nonexistent-photoguard-root", "check-config"]) != 0
    assert calls == []
    cli.main(["--root", "/nonexistent-photoguard-root", "process", "/nonexistent-photo.jpg"])
    assert calls == ["tuned"]

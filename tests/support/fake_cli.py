"""The photoguard command line with fake face models, for the service's subprocess tests.

Run as ``python tests/support/fake_cli.py [--detect-seconds S] [--near] -- <photoguard arguments>``
(``--near``: FACE_A only nearly matches pupil 1001's template, so a reviewer must confirm it). The
models are injected through :func:`photoguard.cli.main`'s ``pipeline_factory``; the installed
``photoguard`` command has no switch for them.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from photoguard.cli import main  # noqa: E402
from photoguard.config import Settings  # noqa: E402
from photoguard.photo.pipeline import Pipeline  # noqa: E402
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector  # noqa: E402
from tests.support.text import FakeTextFinder  # noqa: E402


def fake_pipeline(delay: float, near: bool = False) -> object:
    face_a = fake_vector(1) + fake_vector(7) if near else fake_vector(1)

    def build(root: Path, settings: Settings) -> Pipeline:
        return Pipeline(
            root,
            settings,
            detector=FakeDetector([FACE_A, FACE_B], delay=delay),
            templates=FakeTemplates({FACE_A: face_a, FACE_B: fake_vector(2)}),  # type: ignore[arg-type]
            text=FakeTextFinder(),
        )

    return build


def run(argv: list[str]) -> int:
    delay = 0.0
    if argv[:1] == ["--detect-seconds"]:
        delay = float(argv[1])
        argv = argv[2:]
    near = argv[:1] == ["--near"]
    if near:
        argv = argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return main(argv, pipeline_factory=fake_pipeline(delay, near))  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))

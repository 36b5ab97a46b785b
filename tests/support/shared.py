"""The one way tests find ``../shared``: the data folder beside the repository (faces, metadata
corpus, leakcheck, DNS lists). ``PHOTOGUARD_SHARED`` points elsewhere when it is set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("PHOTOGUARD_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared; fails (not skips) with a clear message when the data is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"test data {p} is missing: clone the repository with ../shared beside it")
    return p

"""The one conftest: tier markers by folder and the DNS fixtures (tests/support/dns.py).

Tests in ``tests/unit``, ``tests/integration`` and ``tests/model`` get the marker of their
folder, so ``-m "not model"`` or ``-m unit`` select a tier; ``-m "not slow"`` is the quick
loop. Helpers live in ``tests/support`` (one school builder, one consent CSV, one ../shared).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.dns"]

TIERS = ("unit", "integration", "model")
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            tier = item.path.resolve().relative_to(_HERE).parts[0]
        except ValueError:
            continue
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))

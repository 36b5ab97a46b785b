"""docs/FAULTS.md maps each fault of issue 17 to the tests that prove it: every test it names
must exist, so the checklist cannot point at a test that was renamed or removed."""

from __future__ import annotations

import re

from tests.support.shared import REPO

DOC = REPO / "docs" / "FAULTS.md"
#: `tier/file.py::test_name` or `tier/file.py::test_name[params]`, and `::test_name` continuing the last file
REF = re.compile(r"`((?:unit|integration|model)/[\w/]+\.py)?::(test_\w+)(?:\[[^\]`]*\])?`")


def test_every_test_the_fault_list_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    seen = 0
    for row in text.splitlines():
        current: str | None = None
        for m in REF.finditer(row):
            current = m.group(1) or current
            assert current is not None, f"a '::{m.group(2)}' without a file before it: {row[:80]}"
            source = (REPO / "tests" / current).read_text(encoding="utf-8")
            assert re.search(rf"^def {m.group(2)}\(", source, re.M), f"{current}::{m.group(2)} does not exist"
            seen += 1
    assert seen > 100  # the list really names its tests

"""No false refusals from the JPEG damage checks (issue 17): every real JPEG in ../shared (the
metadata corpus from many cameras and phones, and the face sets) that reaches its end marker
passes the entropy-data check and decodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoguard.config import MediaConfig
from photoguard.photo.decode import MediaError, decode_bytes, walk_jpeg
from photoguard.photo.formats import entropy_data_sound
from tests.support.shared import shared_path


def _jpegs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file())


@pytest.mark.parametrize("where", [("meta", "corpus"), ("faces",)])
def test_real_jpegs_are_not_refused_as_damaged(where: tuple[str, ...]) -> None:
    files = _jpegs(shared_path(*where))
    assert len(files) > 30
    cfg = MediaConfig()
    refused: list[str] = []
    checked = 0
    for path in files:
        data = path.read_bytes()
        if walk_jpeg(data).eoi_end is None:
            continue  # a file that ends early is refused as incomplete, rightly
        checked += 1
        if not entropy_data_sound(data, walk_jpeg(data)):
            refused.append(f"{path.name}: entropy data")
            continue
        try:
            decode_bytes(data, cfg)
        except MediaError as exc:
            refused.append(f"{path.name}: {exc.reason}")
    assert checked > 30
    assert refused == []

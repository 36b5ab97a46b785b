"""A surname spelled with look-alike letters (Cyrillic, Greek, full-width, zero-width joiners) in a
teacher's caption and in the photo's file name is scrubbed through the whole pipeline, on every
channel; a street address is gone on the public channels (issue 17, privacy). The scrubbing
function itself is unit-tested in tests/unit/test_naming_confusables.py; this is the file a
teacher drops and what every channel publishes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from photoguard.core.naming import fold
from photoguard.core.records import PhotoStatus
from photoguard.photo.pipeline import Pipeline
from tests.integration.test_captions import CHANNELS, NOOR, _captions, _save
from tests.support.school import DAAN, EMMA, consent_csv, make_school

PUBLIC = ("website", "social")
#: Noor ter Horst with a Cyrillic Н and о, Emma de Vries with a Greek Ε and a zero-width space
CAPTIONS = {
    "cyrillic": "Noor ter \u041d\u043erst en Emma de Vries bij de musical, Dorpsstraat 3.",
    "greek-zero-width": "Noor ter Horst en \u0395mma de Vr\u200bies bij de musical, Dorpsstraat 3.",
    "fullwidth": "Noor ter \uff28orst en Emma de \uff36ries bij de musical, Dorpsstraat 3.",
}


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, Pipeline]:
    return make_school(tmp_path, consent=consent_csv([EMMA, DAAN, NOOR]))


@pytest.mark.parametrize("case", sorted(CAPTIONS))
def test_a_look_alike_surname_in_caption_and_file_name_is_scrubbed_everywhere(
    school: tuple[Path, Pipeline], case: str
) -> None:
    root, pipe = school
    src = root / "inbox" / "juf-anne" / "musical Noor ter \u041d\u043erst.jpg"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(_save("JPEG", 11))
    src.with_suffix(".txt").write_text(CAPTIONS[case], encoding="utf-8")
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert set(res.outputs) == set(CHANNELS)
    caps = _captions(root, res.outputs)
    for ch in CHANNELS:
        text = caps[ch]
        assert text is not None and "musical" in text, (ch, text)
        seen = fold(text) + " " + fold(Path(res.outputs[ch]).name)
        assert not re.search(r"(?i)horst|vries", seen), (ch, text, res.outputs[ch])
        if ch in PUBLIC:  # no first names, no street address on public channels
            assert not re.search(r"(?i)noor|emma|straat|\b3\b", seen), (ch, text, res.outputs[ch])
    # the ledger keeps no full name from the file name either
    row = pipe.store.one("SELECT stem FROM photos WHERE sha256=?", (res.sha256,))
    assert row is not None and not re.search(r"(?i)horst", fold(str(row["stem"])))

"""A caption file saved by an old Windows Notepad (cp1252, "ANSI") or as "Unicode" (UTF-16) is
scrubbed like a UTF-8 one (issue 17, privacy: caption scrubbing must not be beaten). Before, such
a file was read as UTF-8 with replacement characters: "Öztürk" became "?zt?rk" and UTF-16 text
"E m r e", which no name matches, so surnames (and on public channels first names) were
published. Through the inbox, the pipeline and every channel's caption."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import pytest

from photoguard.core.naming import fold
from photoguard.core.records import PhotoStatus
from photoguard.photo.pipeline import Pipeline
from tests.integration.test_captions import CHANNELS, _captions, _save
from tests.support.school import EMMA, consent_csv, make_school

#: Emre Öztürk (1004): no consent for anything; Emma de Vries (1001) as in tests.support.school
EMRE = ("1004", "Emre", "", "Öztürk", "7", "", "nee", "nee", "nee", "nee", "nee", "nee", "nee")
CAPTION = "Emre Öztürk en Emma de Vries bij de musical"
PUBLIC = ("website", "social")
FILES = {
    "utf-8": CAPTION.encode("utf-8"),
    "cp1252": CAPTION.encode("cp1252"),
    "utf-16-bom": CAPTION.encode("utf-16"),
    "utf-16-le": CAPTION.encode("utf-16-le"),
    "utf-8-bom": codecs.BOM_UTF8 + CAPTION.encode("utf-8"),
}


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, Pipeline]:
    return make_school(tmp_path, consent=consent_csv([EMMA, EMRE]))


@pytest.mark.parametrize("encoding", sorted(FILES))
def test_a_caption_in_any_editor_encoding_is_scrubbed(school: tuple[Path, Pipeline], encoding: str) -> None:
    root, pipe = school
    src = root / "inbox" / "juf-anne" / "IMG_0007.jpg"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(_save("JPEG", 13))
    src.with_suffix(".txt").write_bytes(FILES[encoding])
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    caps = _captions(root, res.outputs)
    for ch in CHANNELS:
        text = caps[ch]
        assert text is not None and "musical" in text, (ch, text)
        squeezed = fold(re.sub(r"[\s\x00\ufffd]+", "", text))  # however the letters are spaced
        assert not re.search(r"zt.?rk|vries|emre", squeezed), (ch, text)
        assert "\ufffd" not in text, (ch, text)
        if ch in PUBLIC:
            assert "emma" not in squeezed, (ch, text)
        else:  # Emma consents to the closed channels: her first name stays there
            assert text.startswith("Emma bij de musical"), (ch, text)

"""A teacher's caption file in whatever encoding her editor wrote (issue 17, privacy): the text
that comes out is the text she typed, so the name matcher sees the names in it."""

from __future__ import annotations

import codecs

import pytest

from photoguard.core.upload import caption_text

CAPTION = "Emre Öztürk en Zoë de Vries: “musical” €5"

ENCODED = {
    "utf-8": CAPTION.encode("utf-8"),
    "utf-8-bom": codecs.BOM_UTF8 + CAPTION.encode("utf-8"),
    "utf-16-bom": CAPTION.encode("utf-16"),
    "utf-16-be-bom": codecs.BOM_UTF16_BE + CAPTION.encode("utf-16-be"),
    "utf-16-le": CAPTION.encode("utf-16-le"),
    "utf-16-be": CAPTION.encode("utf-16-be"),
    "utf-32-bom": CAPTION.encode("utf-32"),
    "cp1252": CAPTION.encode("cp1252"),
}


@pytest.mark.parametrize("encoding", sorted(ENCODED))
def test_every_editor_encoding_reads_back_as_typed(encoding: str) -> None:
    assert caption_text(ENCODED[encoding]) == CAPTION


def test_latin1_without_the_cp1252_extras_reads_back() -> None:
    assert caption_text("Noor ter Hörst, Çelik".encode("latin-1")) == "Noor ter Hörst, Çelik"


def test_bytes_that_are_nothing_still_give_text() -> None:
    out = caption_text(b"\x81\x8d\x8f\x90\x9d ok")  # the five bytes cp1252 leaves undefined
    assert out.endswith(" ok") and "\ufffd" in out
    assert caption_text(b"") == ""

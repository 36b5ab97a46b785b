"""Captions through the pipeline: only the teacher's sidecar caption is published, scrubbed per
channel; text embedded in the file (EXIF, XMP, IPTC, JPEG comment, PNG text) never is."""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from photoguard.core.records import PhotoStatus
from photoguard.photo.decode import decode_bytes
from photoguard.photo.pipeline import Pipeline
from tests.support.models import FACE_A, FACE_B
from tests.support.school import DAAN, EMMA, consent_csv, make_school

PRESS = "President Barack Obama and Michelle Obama. Photo by Pete Souza"
NOOR = ("1003", "Noor", "ter", "Horst", "7", "", "nee", "nee", "nee", "nee", "nee", "nee", "nee")
CHANNELS = ("newsletter", "parro", "guide", "website", "social")


def _pixels(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((200, 320, 3), 120, dtype=np.uint8)
    for b in (FACE_A, FACE_B):
        x1, y1, x2, y2 = b.as_ints()
        img[y1:y2, x1:x2] = rng.integers(0, 255, size=(y2 - y1, x2 - x1, 3), dtype=np.uint8)
    return img


def _save(fmt: str, seed: int, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_pixels(seed)).save(buf, fmt, **kw)
    return buf.getvalue()


def _exif(tag: str, text: str) -> bytes:
    ex = Image.Exif()
    if tag == "ImageDescription":
        ex[0x010E] = text
    elif tag == "XPComment":
        ex[0x9C9C] = text.encode("utf-16-le") + b"\x00\x00"
    else:  # UserComment, in the Exif sub-IFD
        ex[0x8769] = {0x9286: b"ASCII\x00\x00\x00" + text.encode()}
    return ex.tobytes()


def _xmp(text: str) -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
        b'syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>'
        b'<rdf:Alt><rdf:li xml:lang="x-default">' + text.encode() + b"</rdf:li></rdf:Alt>"
        b"</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def _iptc_jpeg(seed: int, text: str) -> bytes:
    base = _save("JPEG", seed, quality=90)
    rec = b"\x1c\x02\x78" + struct.pack(">H", len(text.encode())) + text.encode()
    irb = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(rec)) + rec
    if len(irb) % 2:
        irb += b"\x00"
    body = b"Photoshop 3.0\x00" + irb
    return base[:2] + b"\xff\xed" + struct.pack(">H", len(body) + 2) + body + base[2:]


def _png_text(seed: int, key: str, text: str, itxt: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    if itxt:
        info.add_itxt(key, text)
    else:
        info.add_text(key, text)
    return _save("PNG", seed, pnginfo=info)


#: (format label, file suffix, bytes with PRESS embedded)
EMBEDDED: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "jpeg-exif-description": (".jpg", lambda s: _save("JPEG", s, exif=_exif("ImageDescription", PRESS))),
    "jpeg-exif-xpcomment": (".jpg", lambda s: _save("JPEG", s, exif=_exif("XPComment", PRESS))),
    "jpeg-exif-usercomment": (".jpg", lambda s: _save("JPEG", s, exif=_exif("UserComment", PRESS))),
    "jpeg-xmp": (".jpg", lambda s: _save("JPEG", s, xmp=_xmp(PRESS))),
    "jpeg-iptc": (".jpg", lambda s: _iptc_jpeg(s, PRESS)),
    "jpeg-comment": (".jpg", lambda s: _save("JPEG", s, comment=PRESS.encode())),
    "png-text": (".png", lambda s: _png_text(s, "Description", PRESS)),
    "png-itxt": (".png", lambda s: _png_text(s, "Title", PRESS, itxt=True)),
    "png-exif": (".png", lambda s: _save("PNG", s, exif=_exif("ImageDescription", PRESS))),
    "webp-exif": (".webp", lambda s: _save("WEBP", s, exif=_exif("ImageDescription", PRESS), quality=90)),
    "webp-xmp": (".webp", lambda s: _save("WEBP", s, xmp=_xmp(PRESS), quality=90)),
    "heic-exif": (".heic", lambda s: _save("HEIF", s, exif=_exif("UserComment", PRESS), quality=80)),
}


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, Pipeline]:
    return make_school(tmp_path, consent=consent_csv([EMMA, DAAN, NOOR]))


def _captions(root: Path, outputs: dict[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for ch, rel in outputs.items():
        side = root / (rel + ".txt")
        out[ch] = side.read_text(encoding="utf-8").strip() if side.exists() else None
    return out


@pytest.mark.parametrize("kind", sorted(EMBEDDED))
def test_embedded_caption_is_never_published(school: tuple[Path, Pipeline], kind: str) -> None:
    root, pipe = school
    suffix, make = EMBEDDED[kind]
    data = make(sorted(EMBEDDED).index(kind) + 10)
    # the caption is really in the file (decode finds it), so its absence below means something
    assert any("Obama" in c for c in decode_bytes(data, pipe.settings.media).embedded_captions), kind
    res = pipe.process_bytes(data, source="p" + suffix, stem="persfoto", suffix=suffix, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert set(res.outputs) == set(CHANNELS)
    assert _captions(root, res.outputs) == dict.fromkeys(CHANNELS)  # no caption file anywhere
    for rel in res.outputs.values():
        assert b"Obama" not in (root / rel).read_bytes() and b"Souza" not in (root / rel).read_bytes()
    for p in (root / "outbox").rglob("*"):
        assert "obama" not in p.name.lower()


def test_only_the_sidecar_is_published_beside_an_embedded_caption(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    data = _save("JPEG", 3, exif=_exif("ImageDescription", PRESS), xmp=_xmp(PRESS))
    res = pipe.process_bytes(
        data, source="p.jpg", stem="musical", suffix=".jpg", group="7", sidecar_text="Generale repetitie musical\n"
    )
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert _captions(root, res.outputs) == dict.fromkeys(CHANNELS, "Generale repetitie musical")


def test_sidecar_in_the_inbox_is_the_caption(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    src = root / "inbox" / "juf-anne" / "IMG_1.jpg"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(_save("JPEG", 4, comment=PRESS.encode()))
    src.with_suffix(".txt").write_text("Emma de Vries bij het voorleesontbijt", encoding="utf-8")
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    caps = _captions(root, res.outputs)
    assert caps["parro"] == "Emma bij het voorleesontbijt"
    assert caps["website"] == "bij het voorleesontbijt"


SIDECAR = (
    "Noor ter Horst en Emma de Vries bij de musical. "
    "Bel juf Anne op 06-12345678 of mail anne@school.nl, Dorpsstraat 3, Ons Dorp."
)


def test_sidecar_caption_is_scrubbed_per_channel(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    data = _save("JPEG", 5)
    res = pipe.process_bytes(data, source="m.jpg", stem="musical", suffix=".jpg", group="7", sidecar_text=SIDECAR)
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    caps = _captions(root, res.outputs)
    # Emma consents to the closed channels; Noor to nothing; public channels carry no names
    for ch in ("newsletter", "parro", "guide"):
        assert caps[ch] == "Emma bij de musical. Ons Dorp.", ch
    for ch in ("website", "social"):
        assert caps[ch] == "bij de musical. Ons Dorp.", ch
    for ch, text in caps.items():
        assert text is not None
        assert not re.search(r"Horst|Vries|Noor|@|\d{3}|straat|mail", text), (ch, text)
        assert not re.search(r"\s[,.;:]|[,;:]\s*[.,;:]|\b(?:of|en|op)[.,;:]", text), (ch, text)

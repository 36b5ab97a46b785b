"""A wall-clock bound on decoding (issue 17): a decode that runs past ``media.max_decode_seconds``
is refused as too heavy, the caller goes on, and the abandoned decode stops at its next read.
The slow decoder is injected (no multi-second file); nothing here asserts a duration."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from photoguard.config import MediaConfig
from photoguard.photo import decode
from photoguard.photo.decode import DecodedImage, MediaError, decode_bytes

QUICK = MediaConfig(max_decode_seconds=1.0)  # generous: a busy machine still decodes a small photo in time


def _jpeg(progressive: bool = False) -> bytes:
    buf = io.BytesIO()
    px = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    Image.fromarray(px).save(buf, "JPEG", progressive=progressive)
    return buf.getvalue()


def test_a_decode_past_the_deadline_is_refused_and_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = decode._decode
    stopped = threading.Event()

    def slow(data: bytes, cfg: MediaConfig, sidecar: str | None, cancelled: threading.Event) -> DecodedImage:
        if data.startswith(b"SLOW"):
            cancelled.wait(30)  # a decoder stuck until the caller gives up
            stopped.set()
            raise decode._Cancelled
        return real(data, cfg, sidecar, cancelled)

    monkeypatch.setattr(decode, "_decode", slow)
    with pytest.raises(MediaError) as exc:
        decode_bytes(b"SLOW" + _jpeg(), QUICK)
    assert "too heavy" in exc.value.reason and "1 s" in exc.value.reason
    assert stopped.wait(10), "the abandoned decode was not told to stop"
    # the next photo is decoded as usual
    assert decode_bytes(_jpeg(), QUICK).pixels.shape == (64, 96, 3)


def test_a_cancelled_real_decode_stops_at_its_next_read() -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(MediaError) as exc:
        decode._decode_or_reason(_jpeg(progressive=True), MediaConfig(), None, cancelled)
    assert "too heavy" in exc.value.reason


def test_errors_in_the_decode_thread_reach_the_caller_as_reasons() -> None:
    with pytest.raises(MediaError) as exc:
        decode_bytes(b"\xff\xd8\xff" + b"\x00" * 50, MediaConfig())
    assert "too heavy" not in exc.value.reason


def test_the_deadline_comes_from_the_config() -> None:
    assert MediaConfig().max_decode_seconds == 30.0
    with pytest.raises(ValueError):
        MediaConfig(max_decode_seconds=0)


@pytest.mark.parametrize(
    ("make", "dutch"),
    [
        (lambda: decode.too_heavy(MediaConfig()).reason, "Te zware afbeelding"),
        (lambda: decode.DAMAGED, "beeldgegevens zijn beschadigd"),
    ],
)
def test_the_reasons_read_in_dutch_on_the_teachers_page(make: object, dutch: str) -> None:
    from photoguard.web import i18n

    reason = make()  # type: ignore[operator]
    assert dutch in i18n.reason(reason, "nl")
    assert i18n.reason(reason, "en") == reason

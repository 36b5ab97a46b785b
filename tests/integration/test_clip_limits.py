"""The limits of a clip (issue 17, crashes and starvation: bound decode work and refuse with a
reason): frames too large, a frame rate out of range, too many bytes. Each is refused with its
reason and kept, nothing published; frames too large are refused from the size the stream
declares, before a frame is decoded. test_video.py covers a clip that is too long."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from photoguard.config import VideoConfig
from photoguard.core.records import PhotoStatus
from photoguard.photo import video
from photoguard.photo.formats import MediaError
from tests.support.clips import BLUE, BlobDetector, MovingFace, TintTemplates, make_clip
from tests.support.school import held_original, make_school

STRANGER = MovingFace(BLUE, 40, 30, seed=3)
CLIP_PIXELS = 192 * 128  # make_clip's default frame size


def _limits(**update: Any) -> VideoConfig:
    return VideoConfig().model_copy(update=update)  # below the validated minimums on purpose


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ({"max_pixels": CLIP_PIXELS - 1}, "frames are too large (192x128"),
        ({"max_fps": 10.0}, "frame rate is not supported (20 fps)"),
        ({"max_bytes": 100}, "the clip is too large"),
    ],
    ids=["pixels", "fps", "bytes"],
)
def test_a_clip_over_a_limit_is_refused_with_the_reason_and_kept(
    tmp_path: Path, update: dict[str, Any], reason: str
) -> None:
    root, pipe = make_school(tmp_path, detector=BlobDetector(), templates=TintTemplates())
    pipe.settings = pipe.settings.model_copy(update={"video": _limits(**update)})
    data = make_clip([STRANGER], frames=6, fps=20)
    res = pipe.process_bytes(data, source="VID_1.mp4", stem="vid", suffix=".mp4", group="7")
    assert res.status is PhotoStatus.REJECTED and reason in res.reason, res.reason
    assert res.outputs == {} and not any(p.is_file() for p in (root / "outbox").rglob("*"))
    assert held_original(root, str(res.quarantine_id)) == data
    pipe.store.close()


def test_frames_too_large_are_refused_before_one_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = video._open
    decoded: list[int] = []

    @contextmanager
    def watching(data: bytes) -> Iterator[Any]:
        with real_open(data) as c:
            real_decode = c.decode

            def counting(*a: Any, **kw: Any) -> Any:
                decoded.append(1)
                return real_decode(*a, **kw)

            members = {"__getattr__": lambda self, n: getattr(c, n), "decode": staticmethod(counting)}
            yield type("Watched", (), members)()

    monkeypatch.setattr(video, "_open", watching)
    data = make_clip([STRANGER], frames=4)
    with pytest.raises(MediaError, match="frames are too large"):
        video.probe(data, _limits(max_pixels=CLIP_PIXELS - 1))
    assert decoded == [], "refused from the declared size"
    assert video.probe(data, _limits()).width == 192 and decoded == [1]  # the proxy does see decoding

"""Video clips through the pipeline, with fake models on clips the tests make (tests/support/clips.py):
every frame's stranger covered, the pupil visible on their channels only, tracks through missed
frames, rotation applied, no metadata (photoguard's own check, ffprobe and exiftool), no sound
unless a channel asks for it, limits held with a reason."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import date
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from photoguard.core.records import Box, Detection, PhotoStatus
from photoguard.core.upload import Upload
from photoguard.followup.propagate import propagate_changes
from photoguard.followup.review import Review
from photoguard.ledger import ledger
from photoguard.photo.video import ClipWriter, VideoProcessor, fast_start, moov_first, verify_clean_video
from tests.support.clips import BLUE, RED, BlobDetector, MovingFace, TintTemplates, decode_clip, make_clip, textured
from tests.support.school import DAAN, EMMA, consent_csv, held_original, import_consent, make_school

PUPIL = MovingFace(RED, 8, 10, dx=2, dy=1, seed=1)  # Emma (1001): newsletter, parro, guide; not website/social
STRANGER = MovingFace(BLUE, 140, 70, dx=-1, dy=-1, seed=2)
FRAMES = 20
TAGS = {
    "title": "Emma de Vries toneel",
    "comment": "groep 7",
    "location": "+52.3700+004.8900/",
    "make": "Apple",
    "model": "iPhone 15",
    "creation_time": "2026-11-20T10:00:00Z",
}


def _school(tmp_path: Path, miss: tuple[int, ...] = (), **config: str) -> tuple[Path, object]:
    return make_school(tmp_path, detector=BlobDetector(miss=miss), templates=TintTemplates(), config=config)


def _run(pipe: object, data: bytes) -> object:
    return pipe.process_bytes(data, source="IMG_0001.MOV", stem="toneel", suffix=".mov", group="7")  # type: ignore[attr-defined]


def _streams(data: bytes) -> list[str]:
    with av.open(io.BytesIO(data)) as c:
        return sorted(s.type for s in c.streams)


def test_every_frame_covers_the_stranger_and_shows_the_pupil_on_consented_channels(tmp_path: Path) -> None:
    # the detector misses three frames in a row: the tracks keep their masks through the gap
    root, pipe = _school(tmp_path, miss=(6, 7, 8))
    res = _run(pipe, make_clip([PUPIL, STRANGER], frames=FRAMES, tags=TAGS))
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert sorted(res.outputs) == ["guide", "newsletter", "parro", "social", "website"]
    assert all(rel.endswith(".mp4") for rel in res.outputs.values())
    for channel, rel in res.outputs.items():
        frames = decode_clip((root / rel).read_bytes())
        assert len(frames) == FRAMES
        assert frames[0].shape == (128, 192, 3)
        for i, rgb in enumerate(frames):
            assert not textured(rgb, STRANGER.box(i)), f"stranger visible in {channel} frame {i}"
            shown = textured(rgb, PUPIL.box(i))
            assert shown is (channel in ("newsletter", "parro", "guide")), f"{channel} frame {i}"
    faces = {f.match.pupil_id: f for f in res.faces}
    assert faces["1001"].verdicts["website"].action.value == "redact"
    assert ledger.live_outputs(pipe.store, res.sha256) == res.outputs  # type: ignore[attr-defined]


def test_frames_between_detections_are_carried_and_faces_appearing_between_are_covered(tmp_path: Path) -> None:
    # quick detection on every 2nd frame: a stranger seen on one odd frame only, another who
    # steps in on an odd frame; the motion gate sends those frames to the detector
    flash = MovingFace(BLUE, 120, 20, seed=5, shown_from=7, shown_until=7)
    late = MovingFace(BLUE, 100, 80, dx=1, seed=6, shown_from=11)
    root, pipe = _school(tmp_path)
    detector = pipe.detector  # type: ignore[attr-defined]
    res = _run(pipe, make_clip([PUPIL, flash, late], frames=FRAMES))
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert detector.calls < FRAMES, "the still frames were carried by the tracks, not detected"
    for channel, rel in res.outputs.items():
        frames = decode_clip((root / rel).read_bytes())
        for i, rgb in enumerate(frames):
            for face in (flash, late):
                if face.shown(i):
                    assert not textured(rgb, face.box(i)), f"stranger visible in {channel} frame {i}"
            assert textured(rgb, PUPIL.box(i)) is (channel in ("newsletter", "parro", "guide")), f"{channel} {i}"


def test_every_frame_detected_when_configured_so(tmp_path: Path) -> None:
    _root, pipe = _school(tmp_path, quick_detect_every="1")
    _run(pipe, make_clip([PUPIL, STRANGER], frames=FRAMES))
    assert pipe.detector.calls == FRAMES  # type: ignore[attr-defined]


def test_output_has_no_metadata_no_sound_and_keeps_the_frame_rate(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path)
    res = _run(pipe, make_clip([PUPIL, STRANGER], frames=FRAMES, fps=20, tags=TAGS, audio=True))
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    for rel in res.outputs.values():
        data = (root / rel).read_bytes()
        assert verify_clean_video(data) == []
        assert _streams(data) == ["video"]  # sound is dropped by default
        for needle in (b"Emma", b"Vries", b"52.37", b"Apple", b"iPhone", b"groep 7", b"x264", b"Lavf"):
            assert needle not in data
        with av.open(io.BytesIO(data)) as c:
            assert float(c.streams.video[0].average_rate) == pytest.approx(20, rel=0.02)


def test_clips_start_playing_while_they_download_moov_before_mdat(tmp_path: Path) -> None:
    # the pipeline's clips, with and without sound: moov in front, every frame and the sound decodable
    root, pipe = _school(tmp_path, audio_channels='["parro"]')
    res = _run(pipe, make_clip([PUPIL, STRANGER], frames=FRAMES, audio=True))
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    for channel, rel in res.outputs.items():
        data = (root / rel).read_bytes()
        top = [data[i + 4 : i + 8] for i in (0, int.from_bytes(data[:4], "big"))]
        assert top == [b"ftyp", b"moov"], (channel, top)
        assert moov_first(data) and data.index(b"moov") < data.index(b"mdat")
        assert len(decode_clip(data)) == FRAMES
        if channel == "parro":
            with av.open(io.BytesIO(data)) as c:
                samples = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
            assert np.abs(samples).max() > 0.1


def test_fast_start_moves_the_index_and_keeps_every_frame_and_sample() -> None:
    from photoguard.config import VideoConfig

    source = make_clip([PUPIL, STRANGER], frames=FRAMES, audio=True)
    writer = ClipWriter((192, 128), Fraction(20), VideoConfig(), audio=True)
    writer.add_audio(source)
    for i, rgb in enumerate(decode_clip(source)):
        writer.add_frame(rgb, i / 20, Fraction(20))
    late = writer.finish(index_first=False)
    assert not moov_first(late)  # FFmpeg's layout: the index after the media
    early = fast_start(late)
    assert moov_first(early) and not moov_first(late)
    assert b"udta" not in early and b"udta" in late
    assert decode_clip(early) and all(
        np.array_equal(a, b) for a, b in zip(decode_clip(early), decode_clip(late), strict=True)
    )
    with av.open(io.BytesIO(early)) as c1, av.open(io.BytesIO(late)) as c2:
        s1 = np.concatenate([f.to_ndarray().ravel() for f in c1.decode(audio=0)])
        s2 = np.concatenate([f.to_ndarray().ravel() for f in c2.decode(audio=0)])
    assert np.array_equal(s1, s2)
    assert fast_start(early) == early  # already in front: left as it is


def test_the_check_finds_what_a_phone_writes() -> None:
    source = make_clip([STRANGER], frames=5, tags=TAGS, rotation=90, audio=True)
    problems = verify_clean_video(source)
    for expected in ("metadata tag title", "metadata tag location", "metadata tag encoder", "rotation", "streams"):
        assert any(expected in p for p in problems), (expected, problems)
    assert any("Lavf" in p for p in problems)


def test_ffprobe_and_exiftool_find_no_metadata(tmp_path: Path) -> None:
    ffprobe, exiftool = shutil.which("ffprobe"), shutil.which("exiftool")
    assert ffprobe and exiftool, "ffprobe (Debian ffmpeg) and exiftool are needed; .ci/run installs them"
    root, pipe = _school(tmp_path)
    source = make_clip([PUPIL, STRANGER], frames=10, tags=TAGS, rotation=90)
    res = _run(pipe, source)
    data = (root / res.outputs["website"]).read_bytes()
    clip = tmp_path / "out.mp4"
    clip.write_bytes(data)
    probe = json.loads(
        subprocess.run(
            [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(clip)],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    assert set(probe["format"].get("tags", {})) <= {"major_brand", "minor_version", "compatible_brands"}
    for s in probe["streams"]:
        assert set(s.get("tags", {})) <= {"language", "handler_name", "vendor_id"}
        assert s["tags"].get("handler_name") in (None, "VideoHandler")
        assert not s.get("side_data_list"), s.get("side_data_list")  # no display matrix left
    assert [s["codec_type"] for s in probe["streams"]] == ["video"]
    exif = json.loads(
        subprocess.run([exiftool, "-j", "-a", "-G1", str(clip)], check=True, capture_output=True, text=True).stdout
    )[0]
    for key, value in exif.items():
        text = str(value)
        # the source's own values (not bare digits: a bitrate or a size may contain "52" by chance)
        for needle in ("Emma", "Vries", "52.37", "4.89", "Apple", "iPhone", "groep", "Lavf", "x264", "2026:"):
            if key.startswith(("System:", "ExifTool:", "File:")):
                continue
            assert needle not in text, (key, value)
    # the source did carry what the output must not
    src = tmp_path / "src.mp4"
    src.write_bytes(source)
    src_tags = subprocess.run([exiftool, "-a", str(src)], check=True, capture_output=True, text=True).stdout
    assert "Emma" in src_tags and "Apple" in src_tags


@pytest.mark.parametrize("rotation", [90, 270, 180])
def test_phone_rotation_is_applied_to_the_pixels(tmp_path: Path, rotation: int) -> None:
    root, pipe = _school(tmp_path)
    upright = (128, 192) if rotation == 180 else (112, 176)  # (width, height): portrait for quarter turns
    stranger = MovingFace(BLUE, 40, 60, dx=1, dy=2, seed=3)
    res = _run(pipe, make_clip([stranger], size=upright, frames=10, rotation=rotation))
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    frames = decode_clip((root / res.outputs["parro"]).read_bytes())
    w, h = upright
    for i, rgb in enumerate(frames):
        assert rgb.shape[:2] == (h, w)
        assert rgb[h - 6, 6].mean() < 60, "the dark marker belongs bottom-left"
        assert rgb[6, w - 6].mean() > 100
        assert not textured(rgb, stranger.box(i))
    with av.open(io.BytesIO((root / res.outputs["parro"]).read_bytes())) as c:
        assert next(c.decode(video=0)).rotation == 0


def test_sound_only_on_configured_channels_and_re_encoded(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path, audio_channels='["parro"]')
    source = make_clip([STRANGER], frames=FRAMES, audio=True)
    res = _run(pipe, source)
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    parro = (root / res.outputs["parro"]).read_bytes()
    assert _streams(parro) == ["audio", "video"]
    assert verify_clean_video(parro, audio=True) == []
    with av.open(io.BytesIO(parro)) as c:
        samples = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    assert np.abs(samples).max() > 0.1  # the tone is there
    with av.open(io.BytesIO(source)) as c:
        src_packets = [bytes(p) for p in c.demux(audio=0) if p.size]
    assert not any(p in parro for p in src_packets if len(p) > 16)  # never stream-copied
    for channel in ("newsletter", "guide", "website", "social"):
        assert _streams((root / res.outputs[channel]).read_bytes()) == ["video"]


def test_webm_input(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path)
    res = _run(pipe, make_clip([STRANGER], frames=10, container="webm"))
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    frames = decode_clip((root / res.outputs["newsletter"]).read_bytes())
    assert len(frames) == 10
    assert not any(textured(rgb, STRANGER.box(i)) for i, rgb in enumerate(frames))


def test_iphone_style_hevc_mov_with_rotation(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path)
    stranger = MovingFace(BLUE, 30, 50, dx=1, dy=2, seed=4)
    data = make_clip([stranger], size=(112, 176), frames=10, rotation=270, container="mov", codec="libx265", tags=TAGS)
    assert data[8:12] == b"qt  "
    res = _run(pipe, data)
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    out = (root / res.outputs["guide"]).read_bytes()
    assert verify_clean_video(out) == []
    frames = decode_clip(out)
    assert frames[0].shape == (176, 112, 3)
    assert not any(textured(rgb, stranger.box(i)) for i, rgb in enumerate(frames))


def test_too_long_clip_is_held_with_a_reason_and_nothing_published(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path, max_seconds="0.5")
    res = _run(pipe, make_clip([STRANGER], frames=20, fps=20))
    assert res.status is PhotoStatus.REJECTED
    assert "too long" in res.reason
    assert res.outputs == {}
    info = json.loads((root / "quarantine" / res.quarantine_id / "reason.json").read_text())
    assert "too long" in info["reason"]
    clip = make_clip([STRANGER], frames=20, fps=20)
    assert held_original(root, str(res.quarantine_id)) == clip  # kept, encrypted at rest
    assert not any(p.is_file() for p in (root / "outbox").rglob("*"))


def test_damaged_clip_is_rejected(tmp_path: Path) -> None:
    _root, pipe = _school(tmp_path)
    data = make_clip([STRANGER], frames=10)
    res = _run(pipe, data[: len(data) // 2])
    assert res.status is PhotoStatus.REJECTED
    assert res.outputs == {}


def test_video_disabled_refuses_clips(tmp_path: Path) -> None:
    _root, pipe = _school(tmp_path)
    pipe.settings = pipe.settings.model_copy(  # type: ignore[attr-defined]
        update={"video": pipe.settings.video.model_copy(update={"enabled": False})}  # type: ignore[attr-defined]
    )
    res = _run(pipe, make_clip([STRANGER], frames=5))
    assert res.status is PhotoStatus.REJECTED
    assert "video" in res.reason


def test_withdrawn_consent_rerenders_the_clip(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path, action='"vault"')
    data = make_clip([PUPIL], frames=10)
    res = _run(pipe, data)
    assert res.status is PhotoStatus.PUBLISHED
    again = pipe.process_bytes(  # type: ignore[attr-defined]
        data, source="again.mov", stem="toneel", suffix=".mov", group="7", channels=["parro"], rerender=True
    )
    assert again.status is PhotoStatus.PUBLISHED
    frames = decode_clip((root / again.outputs["parro"]).read_bytes())
    assert all(textured(rgb, PUPIL.box(i)) for i, rgb in enumerate(frames))


def test_unsure_track_holds_the_clip_and_an_approval_publishes_it_redacted(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path)
    # red (Emma) at first, then blue (nobody): one track, not confidently Emma
    unsure = MovingFace(RED, 20, 30, dx=1, seed=5, turns_into=BLUE, turn_at=8)
    res = _run(pipe, make_clip([unsure], frames=FRAMES))
    assert res.status is PhotoStatus.HELD
    assert sorted(res.held_channels) == ["guide", "newsletter", "parro"]
    assert sorted(res.outputs) == ["social", "website"]  # no consent there: redacted, published
    assert [f.match.kind.value for f in res.faces] == ["near"]
    info = json.loads((root / "quarantine" / res.quarantine_id / "reason.json").read_text())
    assert info["held_channels"] == res.held_channels
    rv = Review(root, pipe.settings, pipe.store, pipe)  # type: ignore[attr-defined]
    approved = rv.approve(res.quarantine_id)
    assert approved.status is PhotoStatus.PUBLISHED, approved.reason
    assert sorted(approved.outputs) == ["guide", "newsletter", "parro"]
    for rel in approved.outputs.values():
        frames = decode_clip((root / rel).read_bytes())
        assert not any(textured(rgb, unsure.box(i)) for i, rgb in enumerate(frames))


def test_frames_detected_on_two_threads_give_the_same_protection(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path)
    data = make_clip([PUPIL, STRANGER], frames=FRAMES)
    upload = Upload.of_bytes(data, source="clip.mp4", stem="toneel", suffix=".mp4", group="7")
    proc = VideoProcessor(pipe, quick=[BlobDetector(), BlobDetector()])  # type: ignore[arg-type]
    res = proc.process(upload, approved_channels=(), from_quarantine=None, channels=None, rerender=False)
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert len(res.faces) == 2
    for channel, rel in res.outputs.items():
        frames = decode_clip((root / rel).read_bytes())
        assert len(frames) == FRAMES
        for i, rgb in enumerate(frames):
            assert not textured(rgb, STRANGER.box(i))
            assert textured(rgb, PUPIL.box(i)) is (channel in ("newsletter", "parro", "guide"))


def test_clip_from_the_inbox_then_a_consent_withdrawal_re_renders_it(tmp_path: Path) -> None:
    root, pipe = _school(tmp_path, action='"vault"')
    clip = root / "inbox" / "groep7" / "IMG_0002.MOV"
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(make_clip([PUPIL, STRANGER], frames=FRAMES, tags=TAGS))
    res = pipe.process_path(clip, group="7")  # type: ignore[attr-defined]
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert not clip.exists(), "the original leaves the inbox once its outputs are committed"
    assert (root / "vault" / f"{res.sha256}.enc").is_file()
    old_parro = res.outputs["parro"]
    frames = decode_clip((root / old_parro).read_bytes())
    assert all(textured(rgb, PUPIL.box(i)) for i, rgb in enumerate(frames))
    # Emma's parents withdraw Parro consent: her clip there is withdrawn and made again without her
    withdrawn = [list(EMMA), list(DAAN)]
    withdrawn[0][7] = "nee"
    report = import_consent(pipe.store, root / "c2.csv", consent_csv(withdrawn))  # type: ignore[attr-defined]
    propagate_changes(root, pipe.settings, pipe.store, report.changes, today=date(2026, 11, 21),  # type: ignore[attr-defined]
                      pipeline=lambda: pipe)  # type: ignore[arg-type,return-value]
    assert not (root / old_parro).exists()
    live = ledger.live_outputs(pipe.store, res.sha256)  # type: ignore[attr-defined]
    assert "parro" in live and live["parro"] != old_parro
    frames = decode_clip((root / live["parro"]).read_bytes())
    assert len(frames) == FRAMES
    for i, rgb in enumerate(frames):
        assert not textured(rgb, PUPIL.box(i)) and not textured(rgb, STRANGER.box(i))
    assert live["newsletter"] == res.outputs["newsletter"]  # untouched where consent stands


def test_a_held_clip_has_preview_frames_redacted_per_channel_with_faces_outlined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    from photoguard.cli.app import main
    from photoguard.followup.review import clip_preview_frames

    root, pipe = _school(tmp_path)
    # looks like Emma when first matched (alone: frame 3), then like nobody: an unsure track
    unsure = MovingFace(RED, 120, 60, dx=-1, seed=5, turns_into=BLUE, turn_at=10, shown_from=3)
    res = _run(pipe, make_clip([PUPIL, unsure], frames=FRAMES))
    assert res.status is PhotoStatus.HELD and res.quarantine_id
    qid = res.quarantine_id
    rv = Review(root, pipe.settings, pipe.store, pipe)  # type: ignore[attr-defined]
    for channel, pupil_shown in (("newsletter", True), ("website", False)):
        frames = clip_preview_frames(rv, qid, channel, count=3)
        assert len(frames) == 3
        assert [f.index for f in frames] == sorted({f.index for f in frames})  # spread, in order
        for f in frames:
            rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            assert rgb.shape == (128, 192, 3) and f.faces == 2
            assert unsure.shown(f.index)
            assert not textured(rgb, unsure.box(f.index), inset=6), (channel, f.index)
            assert textured(rgb, PUPIL.box(f.index), inset=6) is pupil_shown, (channel, f.index)
            # outlined: orange or red around the covered face, green around the shown one
            x1, y1, x2, y2 = unsure.box(f.index).as_ints()
            ring = rgb[max(y1 - 8, 0) : y2 + 8, max(x1 - 8, 0) : x2 + 8].astype(int)
            assert ((ring[..., 0] > 190) & (ring[..., 2] < 70)).sum() > 40
            x1, y1, x2, y2 = PUPIL.box(f.index).as_ints()
            ring = rgb[max(y1 - 8, 0) : y2 + 8, max(x1 - 8, 0) : x2 + 8].astype(int)
            green = ((ring[..., 1] > 140) & (ring[..., 0] < 100) & (ring[..., 2] < 110)).sum()
            assert bool(green > 40) is pupil_shown, green
            assert b"Exif" not in f.jpeg[:200]
    assert clip_preview_frames(Review(root, pipe.settings, pipe.store), qid, "parro") == []  # no models: none
    out = tmp_path / "frames"
    assert main(["--root", str(root), "review", "show", qid, "--frames", str(out)]) == 0
    text = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [f"{ch}_{n}.jpg" for ch in ("guide", "newsletter", "parro")
                                                     for n in range(1, 5)]
    assert "frame parro 1:" in text and all((p.stat().st_mode & 0o777) == 0o600 for p in out.iterdir())
    assert main(["--root", str(root), "review", "show", qid]) == 0
    assert "--frames DIR" in capsys.readouterr().out


class _FacesOnly(BlobDetector):
    """The blob detector, blind to a name card (its letters are texture too)."""

    def __init__(self, card: Box) -> None:
        super().__init__()
        self.card = card

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return [d for d in super().detect(rgb) if d.box.iou(self.card) == 0]


def test_a_name_card_in_a_clip_is_covered_and_the_clip_held_for_review(tmp_path: Path) -> None:
    from tests.support.text import FakeTextFinder, Line, draw_text, word_box

    size, shown = (320, 192), range(5, 25)  # read at frames 10 and 20 (text_every_seconds 1 at 10 fps)
    card = draw_text(np.full((size[1], size[0], 3), 150, np.uint8), [Line("Emma de Vries", 20, 140, size=22)])
    card_box = Box(card[0].box.x1 - 4, card[0].box.y1 - 4, card[0].box.x2 + 4, card[0].box.y2 + 4)

    def paint(i: int, rgb: np.ndarray) -> None:
        if i in shown:
            draw_text(rgb, [Line("Emma de Vries", 20, 140, size=22)])

    finder = FakeTextFinder(card)
    root, pipe = make_school(
        tmp_path, detector=_FacesOnly(card_box), templates=TintTemplates(), text=finder,
        config={"text_every_seconds": "1.0"},
    )
    stranger = MovingFace(BLUE, 240, 20, dx=-1, seed=2)
    res = _run(pipe, make_clip([stranger], size=size, frames=30, fps=10, paint=paint))
    assert res.status is PhotoStatus.HELD, res.reason
    assert sorted(res.held_channels) == ["guide", "newsletter", "parro", "social", "website"]  # a surname: all
    assert "name is in the picture" in res.reason and "Vries" not in res.reason
    assert res.outputs == {} and res.quarantine_id
    assert finder.calls == 3  # frames 0, 10 and 20
    approved = Review(root, pipe.settings, pipe.store, pipe).approve(res.quarantine_id)  # type: ignore[attr-defined]
    assert approved.status is PhotoStatus.PUBLISHED, approved.reason
    assert sorted(approved.outputs) == ["guide", "newsletter", "parro", "social", "website"]
    line = card[0]
    surname = Box(word_box(line, "de").x1, line.box.y1, word_box(line, "Vries").x2, line.box.y2)
    first = word_box(line, "Emma")

    def ink(rgb: np.ndarray, box: Box) -> bool:
        x1, y1, x2, y2 = box.as_ints()
        return float(rgb[y1:y2, x1:x2].astype(np.float32).std()) > 12

    for channel, rel in approved.outputs.items():
        frames = decode_clip((root / rel).read_bytes())
        for i, rgb in enumerate(frames):
            assert not ink(rgb, surname), f"the surname shows in {channel} frame {i}"
            # the first name as on photos: kept where Emma may be named (consent, not public)
            assert ink(rgb, first) is (i in shown and channel in ("newsletter", "parro", "guide")), (channel, i)
            assert not textured(rgb, stranger.box(i))


def test_a_clip_whose_text_cannot_be_read_is_held(tmp_path: Path) -> None:
    from tests.support.text import FakeTextFinder

    finder = FakeTextFinder(error=RuntimeError("onnxruntime went away"))
    _root, pipe = make_school(tmp_path, detector=BlobDetector(), templates=TintTemplates(), text=finder)
    res = _run(pipe, make_clip([STRANGER], frames=5))
    assert res.status is PhotoStatus.HELD and res.outputs == {}
    assert "text in the photo could not be checked (RuntimeError)" in res.reason

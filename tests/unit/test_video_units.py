"""Pure parts of video support: container sniffing and completeness, the IoU tracker and its
masks, one decision per track, output sizes."""

from __future__ import annotations

import struct

from photoguard.core.records import Box, Detection, Match, MatchKind
from photoguard.photo import formats
from photoguard.photo.formats import Completeness
from photoguard.photo.track import IouTracker, MaskPlan, Track
from photoguard.photo.video import exclusive, output_size, track_match


def _ftyp(major: bytes, *compat: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compat)
    return struct.pack(">I4s", 8 + len(body), b"ftyp") + body


def _box(typ: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), typ) + payload


def test_iso_video_brands_are_clips_and_heif_brands_are_photos() -> None:
    mdat = _box(b"moov", b"x" * 20) + _box(b"mdat", b"y" * 40)
    for major, compat in [(b"isom", (b"isom", b"avc1")), (b"qt  ", (b"qt  ",)), (b"M4V ", (b"M4V ", b"mp42"))]:
        data = _ftyp(major, *compat) + mdat
        assert formats.sniff_video(data) is formats.VIDEO_FORMATS["mp4"]
        assert formats.sniff(data) is None
        assert formats.completeness(data) is Completeness.COMPLETE
        assert formats.completeness(data[:-5]) is Completeness.INCOMPLETE
    heic = _ftyp(b"heic", b"mif1", b"heic", b"iso8") + _box(b"meta", b"\x00" * 12) + _box(b"mdat", b"z" * 8)
    assert formats.sniff_video(heic) is None
    assert formats.sniff_format(heic) == "heif"
    # a HEIF brand among video brands: an image, never a clip
    assert formats.sniff_video(_ftyp(b"isom", b"mif1") + mdat) is None
    assert formats.sniff_video(_ftyp(b"avif", b"avif") + mdat) is None


def _ebml(ident: int, payload: bytes, *, unknown: bool = False) -> bytes:
    id_bytes = ident.to_bytes((ident.bit_length() + 7) // 8, "big")
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown else (0x0100000000000000 | len(payload)).to_bytes(8, "big")
    return id_bytes + size + payload


def test_webm_sniffing_and_completeness() -> None:
    header = _ebml(0x1A45DFA3, b"\x42\x82\x84webm")
    segment = _ebml(0x18538067, b"c" * 50)
    data = header + segment
    assert formats.sniff_video(data) is formats.VIDEO_FORMATS["webm"]
    assert formats.completeness(data) is Completeness.COMPLETE
    assert formats.completeness(data[:-1]) is Completeness.INCOMPLETE
    assert formats.completeness(data[:3]) is Completeness.INCOMPLETE
    live = header + _ebml(0x18538067, b"c" * 10, unknown=True)
    assert formats.completeness(live) is Completeness.UNKNOWN
    mkv = _ebml(0x1A45DFA3, b"\x42\x82\x88matroska") + segment
    assert formats.sniff_video(mkv) is None


def _det(x: float, y: float, size: float = 40) -> Detection:
    return Detection(Box(x, y, x + size, y + size), 0.9)


def test_tracker_links_moving_faces_and_keeps_them_apart() -> None:
    t = IouTracker(iou=0.2, gap=3)
    a, b = [], []
    for i in range(10):
        ids = t.update(i, [_det(10 + 5 * i, 10), _det(200, 100 + 4 * i)])
        a.append(ids[0])
        b.append(ids[1])
    assert len(set(a)) == 1 and len(set(b)) == 1 and a[0] != b[0]
    assert len(t.tracks) == 2


def test_tracker_bridges_a_short_gap_and_ends_after_a_long_one() -> None:
    t = IouTracker(iou=0.2, gap=2)
    first = t.update(0, [_det(10, 10)])[0]
    assert t.update(3, [_det(12, 10)])[0] == first  # missed on frames 1 and 2
    assert t.update(10, [_det(12, 10)])[0] != first  # gone too long: a new track


def test_masks_cover_gaps_ends_and_grow_with_motion() -> None:
    track = Track(0)
    track.add(5, _det(0, 0))
    track.add(9, _det(20, 0))
    plan = MaskPlan([track], gap=3, motion_grow=1.0)
    assert plan.boxes(1) == {}  # before the gap margin
    assert plan.boxes(5)[0] == Box(0, 0, 40, 40)
    between = plan.boxes(7)[0]
    assert between.x1 <= 0 and between.x2 >= 60  # the union of both ends, grown
    after = plan.boxes(12)[0]
    assert after.x1 < 20 and after.x2 > 60  # held past the last detection, grown by 3 steps of 5 px
    assert plan.boxes(13) == {}


def test_one_decision_per_track() -> None:
    m1 = Match(MatchKind.MATCH, "1001", 0.3, 0.8)
    assert track_match([m1, m1, m1], 0.6).kind is MatchKind.MATCH
    assert track_match([m1, m1, Match(MatchKind.NONE)], 0.6).kind is MatchKind.MATCH
    assert track_match([m1, Match(MatchKind.NONE), Match(MatchKind.NONE)], 0.6) == Match(
        MatchKind.NEAR, "1001", 0.3, None
    )
    other = Match(MatchKind.MATCH, "1002", 0.3, 0.8)
    assert track_match([m1, m1, other], 0.5).kind is MatchKind.NEAR  # two pupils in one track
    near = Match(MatchKind.NEAR, "1001", 0.5, 0.6)
    assert track_match([m1, near, m1], 0.5).kind is MatchKind.NEAR
    assert track_match([], 0.6).kind is MatchKind.TOO_SMALL
    assert track_match([Match(MatchKind.TOO_SMALL)], 0.6).kind is MatchKind.TOO_SMALL
    assert track_match([Match(MatchKind.NONE)], 0.6).kind is MatchKind.NONE


def test_one_pupil_is_one_face_at_a_time() -> None:
    a, b, c = Track(0), Track(1), Track(2)
    a.add(0, _det(0, 0))
    a.add(10, _det(0, 0))
    b.add(5, _det(100, 0))
    c.add(20, _det(100, 0))
    m = Match(MatchKind.MATCH, "1001", 0.3, 0.8)
    out = exclusive([a, b, c], [m, m, m])
    assert [x.kind for x in out] == [MatchKind.NEAR, MatchKind.NEAR, MatchKind.MATCH]


def test_output_size_is_even_and_never_upscaled() -> None:
    assert output_size(1920, 1080, 1280) == (1280, 720)
    assert output_size(160, 96, 2000) == (160, 96)
    assert output_size(1081, 1921, 1000) == (562, 1000)

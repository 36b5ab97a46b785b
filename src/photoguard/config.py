"""One validated configuration tree, loaded from ``ROOT/photoguard.toml``.

Every section rejects unknown keys, every field has bounds and a description, and an invalid file
stops every command (no degraded start). ``check_config`` reports the dotted key path of each error.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from photoguard.dnsfilter.config import DnsConfig

CONFIG_NAME = "photoguard.toml"
ROOT_ENV = "PHOTOGUARD_ROOT"

#: The publication consents a channel can be tied to (DESIGN.md, consent table).
CONSENT_KEYS: tuple[str, ...] = (
    "newsletter",
    "parro",
    "guide",
    "website",
    "social",
    "classlist_phone",
    "face_matching",
)
PUBLICATION_KEYS: tuple[str, ...] = ("newsletter", "parro", "guide", "website", "social")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NearMatchPolicy(StrEnum):
    """What to do with a face that nearly matches a consenting pupil."""

    HOLD = "hold"  # hold the photo for review in that channel (fail-closed default)
    REDACT = "redact"  # redact the face and publish


class RedactMethod(StrEnum):
    SOLID = "solid"
    PIXELATE = "pixelate"


class RedactOutline(StrEnum):
    HEAD = "head"  # box ellipse raised and grown for large faces, plus a landmark ellipse
    ELLIPSE = "ellipse"  # the box grown around its centre (the earlier outline)


class OriginalAction(StrEnum):
    DELETE = "delete"
    VAULT = "vault"


class PathsConfig(Strict):
    inbox: str = Field("inbox", description="Teacher drop folders, relative to the root")
    outbox: str = Field("outbox", description="Approved files, one sub-folder per channel")
    quarantine: str = Field("quarantine", description="Held and rejected photos with a reason")
    vault: str = Field("vault", description="Encrypted originals kept for re-rendering")
    state: str = Field("state", description="SQLite database and key files")


class ChannelConfig(Strict):
    name: str = Field(description="Folder name under outbox/, e.g. 'website'", pattern=r"^[a-z0-9_-]{1,32}$")
    consent: str = Field(description="Consent key this channel requires (newsletter, parro, ...)")
    public: bool = Field(description="Public channel: no pupil names at all in names and captions")
    max_side: int = Field(2000, ge=64, le=20000, description="Longest output side in pixels")
    format: Literal["jpeg", "png", "auto"] = Field(
        "jpeg", description="Output format; 'auto' gives PNG (flattened over white) where the source has transparency"
    )

    @field_validator("consent")
    @classmethod
    def _known_consent(cls, v: str) -> str:
        if v not in PUBLICATION_KEYS:
            raise ValueError(f"unknown consent key {v!r}; expected one of {', '.join(PUBLICATION_KEYS)}")
        return v


def _default_channels() -> list[ChannelConfig]:
    return [
        ChannelConfig(name="newsletter", consent="newsletter", public=False, max_side=2000),
        ChannelConfig(name="parro", consent="parro", public=False, max_side=2000),
        ChannelConfig(name="guide", consent="guide", public=False, max_side=3000),
        ChannelConfig(name="website", consent="website", public=True, max_side=1600),
        ChannelConfig(name="social", consent="social", public=True, max_side=1080),
    ]


class CenterFaceConfig(Strict):
    type: Literal["centerface"] = "centerface"
    score: float = Field(0.3, gt=0, lt=1, description="Minimum detection score")
    long_sides: list[int] = Field(
        default_factory=lambda: [1920, 1024],
        description="Long sides (px) to run at; 0 means the photo's own size (slow on 12 MP)",
    )
    tile_megapixels: float = Field(
        1.5, ge=0.1, le=100, description="Larger passes run as overlapping tiles of at most this size (bounds memory)"
    )


class YuNetConfig(Strict):
    type: Literal["yunet"] = "yunet"
    score: float = Field(0.3, gt=0, lt=1, description="Minimum detection score")
    long_sides: list[int] = Field(
        default_factory=lambda: [1024, 1920, 2560],
        description="Long sides (px); 0 = own size. Upscaling a ~1 MP photo finds small faces",
    )
    large_score: float = Field(
        0.5, gt=0, lt=1, description="Minimum score for boxes >= 64 px in the detector input and >= 40 px in the photo"
    )
    tile_megapixels: float = Field(
        1.5, ge=0.1, le=100, description="Larger passes run as overlapping tiles of at most this size (bounds memory)"
    )
    fine_scale: float = Field(
        0.0, ge=0, le=2, description="Fine pass on large photos at this scale (1 = own size; 0 = off), only in the"
        " tiles around faces that were small in the largest pass"
    )
    fine_trigger_px: float = Field(
        14.0, ge=0, le=200, description="A face lower than this (px) in the largest pass's input calls the fine pass"
    )
    turns: list[Literal[90, 270]] = Field(
        default_factory=list,
        description="Extra low-resolution passes on the photo turned by these degrees (90, 270): faces lying on"
        " their side (a child on the grass, a baby, a drawing) that upright passes miss",
    )
    turn_long_side: int = Field(
        768, ge=128, le=2048, description="Long side (px) of the turned passes (never above the photo's own size)"
    )
    turn_score: float = Field(
        0.7, gt=0, lt=1, description="Minimum score of a face found only in a turned pass (>= 40 px in the photo)"
    )


def _default_members() -> list[CenterFaceConfig | YuNetConfig]:
    # measured in docs/BENCHMARKS.md: YuNet at 3 scales carries recall (512: a low-resolution
    # pass for faces that fill the photo); CenterFace at one cheap scale adds a second,
    # independently trained opinion (it also confirms YuNet's large low-score boxes); on a photo
    # larger than the largest pass, a fine pass at its own size around the small faces found
    # ... and two turned low-resolution passes for faces lying on their side
    return [
        CenterFaceConfig(long_sides=[1024]),
        YuNetConfig(long_sides=[512, 1024, 2240], fine_scale=1.0, turns=[90, 270]),
    ]


class EnsembleConfig(Strict):
    type: Literal["ensemble"] = "ensemble"
    members: list[Annotated[CenterFaceConfig | YuNetConfig, Field(discriminator="type")]] = Field(
        default_factory=_default_members,
        description="Detectors whose boxes are united (recall first)",
    )
    nms_iou: float = Field(0.4, gt=0, lt=1, description="Boxes overlapping more than this are merged")


DetectorConfig = Annotated[CenterFaceConfig | YuNetConfig | EnsembleConfig, Field(discriminator="type")]


class IdentifyConfig(Strict):
    match_distance: float = Field(
        0.45, gt=0, lt=1, description="Max dlib distance for a confident match (0.6 leaks strangers)"
    )
    review_distance: float = Field(
        0.55, gt=0, lt=1.5, description="Up to this distance a face 'nearly matches' (hold/redact)"
    )
    margin: float = Field(0.06, ge=0, lt=1, description="Required gap to the runner-up pupil")
    min_face_px: int = Field(40, ge=20, le=1000, description="Smaller faces are never matched")
    near_match: NearMatchPolicy = Field(NearMatchPolicy.HOLD, description="hold or redact")
    template_engine: Literal["opencv", "dlib", "sface"] = Field(
        "sface",
        description="Face templates: sface (OpenCV SFace, the sface_* cosine rules; no stranger matched at"
        " school scale) or dlib's ResNet run in opencv (checked against dlib at start, falls back to dlib on"
        " any difference) or in dlib itself (both use the *_distance rules). Templates of one engine never"
        " match another's: after switching, enrol the pupils again (photoguard enrol --dir)",
    )
    outside_group_distance: float = Field(
        0.40, gt=0, lt=1,
        description="dlib engines: max distance for a confident match to a pupil outside the photo's group"
        " (stricter than match_distance)",
    )
    sface_match_similarity: float = Field(
        0.50, ge=0.3, le=0.95,
        description="sface: min cosine similarity for a confident match (0.45 let a stranger through at"
        " school scale, 0.36 many)",
    )
    sface_review_similarity: float = Field(
        0.42, ge=0.1, le=0.95,
        description="sface: from this cosine similarity a face 'nearly matches' (hold/redact)",
    )
    sface_margin: float = Field(
        0.05, ge=0, lt=1, description="sface: required similarity gap to the runner-up pupil"
    )
    sface_near_support_similarity: float = Field(
        0.36, ge=0, le=0.95,
        description="sface: a near match holds only when a second enrolment photo of the pupil also reaches this"
        " cosine similarity (two-photo support; 0.36 is about the top 0.1 % of stranger pairs); 0 = not required",
    )
    sface_single_photo_similarity: float = Field(
        0.60, ge=0.3, le=0.95,
        description="sface: a confident match on one enrolment photo alone needs this cosine similarity;"
        " below it (down to sface_match_similarity) a second enrolment photo of the pupil must also reach"
        " sface_match_support_similarity, else the face is redacted (nothing held)",
    )
    sface_match_support_similarity: float = Field(
        0.50, ge=0, le=0.95,
        description="sface: what the second enrolment photo must reach for a confident match below"
        " sface_single_photo_similarity (two-photo support for matches); 0 = not required",
    )
    sface_outside_group_similarity: float = Field(
        0.60, ge=0.3, le=0.95,
        description="sface: min cosine similarity for a confident match to a pupil outside the photo's group"
        " (stricter than sface_match_similarity)",
    )
    template_workers: int = Field(
        2, ge=0, le=16,
        description="With template_engine = dlib: processes computing templates in parallel (0 or 1 = in-process)",
    )

    @model_validator(mode="after")
    def _order(self) -> IdentifyConfig:
        if self.review_distance < self.match_distance:
            raise ValueError("review_distance must be >= match_distance")
        if self.outside_group_distance > self.match_distance:
            raise ValueError("outside_group_distance must be <= match_distance (stricter)")
        if self.sface_review_similarity > self.sface_match_similarity:
            raise ValueError("sface_review_similarity must be <= sface_match_similarity")
        if self.sface_outside_group_similarity < self.sface_match_similarity:
            raise ValueError("sface_outside_group_similarity must be >= sface_match_similarity (stricter)")
        if self.sface_single_photo_similarity < self.sface_match_similarity:
            raise ValueError("sface_single_photo_similarity must be >= sface_match_similarity")
        return self


class RedactConfig(Strict):
    method: RedactMethod = Field(RedactMethod.SOLID, description="solid fill or coarse noisy mosaic")
    grow: float = Field(1.4, ge=1.0, le=3.0, description="Ellipse size relative to the face box")
    outline: RedactOutline = Field(
        RedactOutline.HEAD,
        description="head: raised, larger for large faces, follows the landmarks (tilt, profile); ellipse: box only",
    )
    self_check: bool = Field(True, description="Detect again after redaction; fill what is found")
    check_detector: DetectorConfig = Field(
        default_factory=lambda: YuNetConfig(score=0.3, long_sides=[1600]),
        description="Detector for the self-check pass (a fast one: the first pass already ran the full set)",
    )


class UnreadableText(StrEnum):
    """What to do with text that is found but cannot be read (often a pupil's handwriting)."""

    KEEP = "keep"
    REDACT_PUBLIC = "redact_public"
    REDACT_ALL = "redact_all"


class TextConfig(Strict):
    """Text in the image (photoguard.photo.text finds it, photoguard.core.textpolicy decides)."""

    enabled: bool = Field(True, description="Find and read text in every photo; redact names and contact details")
    det_long_side: int = Field(
        960, ge=320, le=4000, description="Long side (px) of the reduced copy text is detected on"
    )
    det_thresh: float = Field(0.3, gt=0, lt=1, description="Pixel probability that counts as text")
    box_thresh: float = Field(
        0.3, gt=0, lt=1, description="Mean probability a text line needs (low: faint handwriting is kept)"
    )
    min_read_score: float = Field(
        0.6, ge=0, le=1, description="Lines read with less confidence count as unreadable"
    )
    unreadable: UnreadableText = Field(
        UnreadableText.REDACT_PUBLIC, description="Unreadable text: keep, redact_public or redact_all"
    )
    unreadable_min_det_score: float = Field(
        0.6, ge=0, le=1, description="Only unreadable lines the detector is at least this sure of are redacted"
    )
    refine_long_side: int = Field(
        640, ge=320, le=4096, description="Long side (px) of the closer look at a line that read badly"
    )
    threads: int = Field(2, ge=1, le=64, description="CPU threads for the text models")


class MediaConfig(Strict):
    max_pixels: int = Field(
        80_000_000, ge=1_000_000, le=1_000_000_000, description="Decompression-bomb limit (pixels)"
    )
    max_bytes: int = Field(200_000_000, ge=1_000_000, description="Largest accepted upload in bytes")
    max_jpeg_scans: int = Field(
        100, ge=1, le=10_000, description="Most scans a JPEG may have (each is a pass over every pixel)"
    )
    max_decode_seconds: float = Field(
        30.0, gt=0, le=600, description="Longest a photo may take to decode; a slower one is refused as too heavy"
    )
    jpeg_quality: int = Field(92, ge=60, le=100, description="JPEG quality when the source's is unknown")
    jpeg_optimize: bool = Field(
        False, description="Huffman-optimised JPEGs: 3-7 % smaller files for about twice the encoding time"
    )


class VideoConfig(Strict):
    """Video clips (photoguard.photo.video): limits, output and how faces are followed."""

    enabled: bool = Field(True, description="Accept video clips (MP4, MOV, M4V, WebM); off = refuse them")
    max_seconds: float = Field(180.0, gt=0, le=3600, description="Longest accepted clip in seconds")
    max_pixels: int = Field(
        3840 * 2160, ge=64 * 64, le=8192 * 8192, description="Largest accepted frame (width x height)"
    )
    max_fps: float = Field(120.0, gt=0, le=1000, description="Highest accepted frame rate")
    max_bytes: int = Field(
        200_000_000, ge=1_000_000, description="Largest accepted clip in bytes (media.max_bytes also applies)"
    )
    max_side: int = Field(
        1280, ge=64, le=8192, description="Longest output side of a clip (the channel's max_side also applies)"
    )
    crf: int = Field(23, ge=0, le=51, description="H.264 quality (constant rate factor: lower = better, larger)")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        "veryfast", description="H.264 encoder speed preset"
    )
    audio_channels: list[str] = Field(
        default_factory=list,
        description="Channels whose clips keep their sound (re-encoded to AAC); default none: voices and "
        "spoken names identify children",
    )
    full_detect_every: int = Field(
        15, ge=1, le=60, description="The full face detector (detect) runs on every Nth frame; the quick "
        "detector on the frames between"
    )
    quick_detector: YuNetConfig = Field(
        default_factory=lambda: YuNetConfig(score=0.3, long_sides=[960]),
        description="The detector on the frames between full detections (a fast one: tracks carry what "
        "the full detector found)",
    )
    quick_detect_every: int = Field(
        2, ge=1, le=10, description="The quick detector runs on every Nth frame between full detections, and on "
        "every frame where something moves outside the faces followed or a face came or went; the tracks' "
        "masks (grown for motion) cover the frames between"
    )
    detect_threads: int = Field(
        2, ge=1, le=16, description="Frames detected at once (one quick detector each); one YuNet pass "
        "hardly uses a second core by itself"
    )
    identify_every: int = Field(
        15, ge=1, le=300, description="Face templates are taken on every Nth frame of a track"
    )
    track_iou: float = Field(0.2, gt=0, lt=1, description="Overlap that links a face to a track in the next frame")
    track_gap: int = Field(
        15, ge=0, le=300, description="Frames a track keeps its mask after (and before) its detections"
    )
    motion_grow: float = Field(
        1.5, ge=0, le=10, description="Masks grow by this many times the face's movement per frame, per frame "
        "away from a detection"
    )
    text_every_seconds: float = Field(
        1.0, gt=0, le=60, description="Text in the picture (text.enabled) is read on the first frame, then about "
        "this often and after every scene cut; names found are covered and the clip held for review"
    )
    min_match_fraction: float = Field(
        0.6, gt=0, le=1, description="Share of a track's sampled frames that must match its pupil for the "
        "track to be visible (one decision for the whole track)"
    )

    @model_validator(mode="after")
    def _gap_spans_full_detections(self) -> VideoConfig:
        if self.track_gap < self.full_detect_every:
            raise ValueError("track_gap must be at least full_detect_every (a track lasts until the next full pass)")
        if self.track_gap < self.quick_detect_every:
            raise ValueError("track_gap must be at least quick_detect_every (a track lasts until the next detection)")
        return self


class OriginalsConfig(Strict):
    action: OriginalAction = Field(
        OriginalAction.DELETE, description="After publishing: delete the original, or keep it encrypted"
    )
    vault_days: int = Field(30, ge=1, le=3650, description="Days an encrypted original is kept")


class RetentionConfig(Strict):
    quarantine_days: int = Field(30, ge=1, le=3650, description="Days held/rejected items are kept")
    audit_days: int = Field(365, ge=30, le=36500, description="Days audit events are kept (deletion log kept)")
    leaver_channels: list[str] = Field(
        default_factory=lambda: ["parro"],
        description="Channels whose outputs showing a pupil who has left are removed at the sweep",
    )
    leaver_other_days: int = Field(
        0,
        ge=0,
        le=36500,
        description="Other channels: outputs showing a leaver are removed this many days after the "
        "leave date (0 = kept; nothing new is published of a leaver anyway)",
    )
    temp_minutes: int = Field(60, ge=1, description="Stale temp files older than this are removed")


class LocaleConfig(Strict):
    timezone: str = Field(
        "Europe/Amsterdam",
        description="Time zone of the times people read (reports, lists, review, status); stored times stay UTC",
    )
    csv_separator: Literal[";", ","] = Field(
        ";", description="CSV separator: ';' opens in Dutch Excel as columns, ',' for other tools"
    )
    csv_bom: bool = Field(True, description="Start CSV files with a UTF-8 byte-order mark (Excel needs it for é, ë)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; expected an IANA name like Europe/Amsterdam") from None
        return v


class InboxFolder(Strict):
    folder: str = Field(description="Sub-folder of inbox/ (one per teacher or group)")
    group: str = Field(description="Group the photos belong to, e.g. '7' or '5b'", max_length=16)


class ServiceConfig(Strict):
    workers: int = Field(
        0, ge=0, le=64, description="Photos processed at once (threads); 0 = half the CPU cores, at least 1"
    )
    queue_max: int = Field(256, ge=1, le=100_000, description="Bound on queued photos (back-pressure)")
    polling: bool = Field(False, description="Use a polling observer (network shares)")
    poll_seconds: float = Field(2.0, gt=0, le=600, description="Polling interval")
    settle_seconds: float = Field(1.0, ge=0, le=600, description="Size/mtime must be stable this long")
    incomplete_wait_seconds: float = Field(
        900.0,
        gt=0,
        le=7 * 86400,
        description="An upload whose structure ends early (a stalled writer) waits this long unchanged; "
        "then it is moved to quarantine with a reason, never deleted",
    )
    sweep_at: str = Field("02:30", pattern=r"^\d{2}:\d{2}$", description="Daily retention sweep (HH:MM)")
    folders: list[InboxFolder] = Field(default_factory=list, description="Inbox folder -> group map")


class Settings(Strict):
    """The whole configuration. Relative paths resolve against the root folder."""

    school: str = Field("school", description="Short school name (not published)", max_length=64)
    paths: PathsConfig = PathsConfig()
    channels: list[ChannelConfig] = Field(
        default_factory=_default_channels, description="Publication channels, one outbox folder each"
    )
    detect: DetectorConfig = Field(
        default_factory=EnsembleConfig, description="Face detector: centerface, yunet or ensemble"
    )
    identify: IdentifyConfig = IdentifyConfig()
    redact: RedactConfig = RedactConfig()
    text: TextConfig = TextConfig()
    media: MediaConfig = MediaConfig()
    video: VideoConfig = VideoConfig()
    originals: OriginalsConfig = OriginalsConfig()
    retention: RetentionConfig = RetentionConfig()
    service: ServiceConfig = ServiceConfig()
    dns: DnsConfig = DnsConfig()
    locale: LocaleConfig = LocaleConfig()

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, v: list[ChannelConfig]) -> list[ChannelConfig]:
        names = [c.name for c in v]
        if len(set(names)) != len(names):
            raise ValueError("channel names must be unique")
        if not v:
            raise ValueError("at least one channel is required")
        return v

    @model_validator(mode="after")
    def _known_audio_channels(self) -> Settings:
        unknown = set(self.video.audio_channels) - {c.name for c in self.channels}
        if unknown:
            raise ValueError(f"video.audio_channels names unknown channel(s): {', '.join(sorted(unknown))}")
        return self

    def channel(self, name: str) -> ChannelConfig:
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)

    def group_for_folder(self, folder: str) -> str | None:
        for f in self.service.folders:
            if f.folder == folder:
                return f.group
        return None


class ConfigError(Exception):
    """An invalid or unreadable config; ``errors`` holds '<key.path>: message' lines."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        self.path = path
        self.errors = errors
        super().__init__(f"{path}: " + "; ".join(errors))


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p in ("centerface", "yunet", "ensemble", "function-after"):
            continue  # discriminator tags add noise to the key path
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(top level)"


def parse_settings(data: dict[str, Any], path: Path = Path("<memory>")) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        errors = [f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(path, errors) from None


def load_settings(root: Path) -> Settings:
    path = root / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(path, [f"no {CONFIG_NAME} here; run 'photoguard init {root}' first"])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, [f"cannot read: {exc}"]) from None
    return parse_settings(data, path)


def resolve_root(cli_root: str | None) -> Path:
    raw = cli_root or os.environ.get(ROOT_ENV) or "."
    return Path(raw).expanduser().resolve()


class Layout:
    """Absolute folders for one root."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        p = settings.paths
        self.inbox = root / p.inbox
        self.outbox = root / p.outbox
        self.quarantine = root / p.quarantine
        self.vault = root / p.vault
        self.state = root / p.state
        self.db = self.state / "photoguard.sqlite3"
        self.key = self.state / "photoguard.key"

    def channel_dir(self, channel: str) -> Path:
        return self.outbox / channel

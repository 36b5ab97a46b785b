"""A held clip on the review page: four frames per held channel on one sheet, redacted as that
channel would get them, faces outlined; made once and kept; never for a teacher."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from starlette.testclient import TestClient

from photoguard.ledger import users
from photoguard.ledger.users import Role
from photoguard.web.app import create_app
from photoguard.web.passwords import hash_password
from tests.integration.web.school import PASSWORD, login_token
from tests.support.clips import BLUE, RED, BlobDetector, MovingFace, TintTemplates, make_clip
from tests.support.school import make_school

PUPIL = MovingFace(RED, 8, 10, dx=2, dy=1, seed=1)  # Emma: newsletter, parro, guide; not website/social
# looks like Emma when first matched, then like nobody: an unsure track that holds the clip
UNSURE = MovingFace(RED, 120, 60, dx=-1, seed=5, turns_into=BLUE, turn_at=10, shown_from=3)


def _rgb(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int)


def _green(rgb: np.ndarray) -> int:
    return int(((rgb[..., 1] > 140) & (rgb[..., 0] < 100) & (rgb[..., 2] < 110)).sum())


def _covered_outline(rgb: np.ndarray) -> int:
    """Pixels of an orange (resembles a pupil, stays covered) or red (covered) outline."""
    return int(((rgb[..., 0] > 190) & (rgb[..., 1] < 190) & (rgb[..., 2] < 70)).sum())


def _login(app: object, name: str) -> TestClient:
    c = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
    r = c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": login_token(c)})
    assert r.status_code == 303
    return c


def test_a_held_clip_shows_its_frames_per_held_channel(tmp_path: Path) -> None:
    detector = BlobDetector()
    root, pipe = make_school(tmp_path, detector=detector, templates=TintTemplates())
    res = pipe.process_bytes(
        make_clip([PUPIL, UNSURE], frames=20), source="IMG_0001.MOV", stem="toneel", suffix=".mov", group="7"
    )
    assert res.status.value == "held" and res.quarantine_id
    qid = res.quarantine_id
    users.add_user(pipe.store, "carla", Role.COMMS, (), hash_password(PASSWORD))
    users.add_user(pipe.store, "anne", Role.TEACHER, ("juf-anne",), hash_password(PASSWORD))
    app = create_app(root, pipe.settings, lambda _r, _s: pipe, store=pipe.store)
    carla = _login(app, "carla")

    page = carla.get(f"/review/{qid}").text
    held = {"guide", "newsletter", "parro"}  # Emma's channels; website and social published with her covered
    for ch in ("guide", "newsletter", "parro", "website", "social"):
        assert (f"/review/{qid}/clip/{ch}.jpg" in page) is (ch in held), ch
    assert "Vier beelden verspreid over de clip" in page
    # a clip is approved as a whole: no per-face buttons
    assert "Vastgehouden clip" in page and "Gezichten in deze clip" in page and "Dit is" not in page

    sheets: dict[str, np.ndarray] = {}
    for ch in ("newsletter", "website"):
        r = carla.get(f"/review/{qid}/clip/{ch}.jpg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "no-store"
        assert b"Exif" not in r.content[:400]
        sheets[ch] = _rgb(r.content)
    h, w = sheets["newsletter"].shape[:2]
    assert 1100 <= w <= 1200 and h > w // 2  # two frames per row, two rows
    # the unsure face is outlined as covered on both; Emma green only where the channel shows her
    assert _covered_outline(sheets["newsletter"]) > 100 and _covered_outline(sheets["website"]) > 100
    assert _green(sheets["newsletter"]) > 100
    assert _green(sheets["website"]) == 0

    # made once: a second request does not run the detector again
    calls = detector.calls
    again = carla.get(f"/review/{qid}/clip/newsletter.jpg")
    assert again.status_code == 200 and detector.calls == calls

    # the queue's thumbnail of a clip: one frame, every face covered
    thumb = carla.get(f"/review/{qid}/thumb.jpg")
    assert thumb.status_code == 200
    small = _rgb(thumb.content)
    assert max(small.shape[:2]) <= 320 and _green(small) == 0

    assert carla.get(f"/review/{qid}/clip/nosuch.jpg").status_code == 404
    anne = _login(app, "anne")
    assert anne.get(f"/review/{qid}/clip/newsletter.jpg").status_code == 403

    # once approved the clip is no longer held: no frames
    r = carla.post(f"/review/{qid}/approve", data={"csrf_token": _csrf(carla.get(f"/review/{qid}").text)})
    assert r.status_code == 303
    assert carla.get(f"/review/{qid}/clip/newsletter.jpg").status_code == 404


def _csrf(page: str) -> str:
    from tests.integration.web.school import csrf_of

    return csrf_of(page)

"""The whole day in one run, in a real browser (Debian's chromium through Playwright, the server a
``photoguard web`` subprocess stopped by its PID, as in ``test_browser.py``):

a teacher drops a photo in her inbox folder and ``photoguard process`` (a real CLI run, fake face
models that see Emma only as a near match) holds it; on her phone she sees "vastgehouden" with the
reason; a reviewer confirms Emma and approves; the teacher sees "gepubliceerd" and the channels'
pictures; comms downloads the newsletter's file (the bytes are the outbox's, without metadata);
the privacy officer finds the events of both accounts in the audit trail. Every page is
photographed as ``chain-*`` at phone or desktop width (``PHOTOGUARD_SCREENSHOTS``: see docs/WEB.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pytest

from photoguard.ledger import ledger, users
from photoguard.ledger.db import Store
from photoguard.ledger.users import Role
from photoguard.web.passwords import hash_password
from tests.integration.web.school import ACCOUNTS, FAKE_CLI, PASSWORD, web_server
from tests.integration.web.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, STEP_MS, _shots_folder
from tests.support.clips import make_clip
from tests.support.models import FACE_A, FACE_B
from tests.support.photos import make_photo
from tests.support.school import make_school
from tests.support.shared import REPO

pytestmark = pytest.mark.timeout(240)

SHOTS = ("chain-held-phone", "chain-review-desktop", "chain-published-phone", "chain-channel-desktop",
         "chain-audit-desktop")


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    root, pipe = make_school(tmp_path)
    for login, (role, folders) in ACCOUNTS.items():
        users.add_user(pipe.store, login, role, folders, hash_password(PASSWORD))
    pipe.store.close()
    # the teacher's upload: a file in her folder, processed by the command line
    photo = make_photo(root / "inbox" / "juf-anne" / "schoolreis.jpg", seed=7)
    run = subprocess.run(
        [sys.executable, str(FAKE_CLI), "--near", "--", "--root", str(root), "process", "--json", str(photo)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert run.returncode == 1, run.stderr  # 1: ran, and a photo waits for review
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == "held" and result["quarantine_id"], result
    assert not photo.exists()  # moved into quarantine, not lost
    with web_server(root, near=True) as base:
        yield base, root, str(result["quarantine_id"])


def _login(ctx: Any, base: str, login: str, lands: str) -> Any:
    page = ctx.new_page()
    page.goto(base + "/login")
    page.get_by_label("Gebruikersnaam").fill(login)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(base + lands)
    return page


def test_upload_held_confirmed_published_downloaded_audited(school: tuple[str, Path, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    base, root, qid = school
    assert CHROMIUM.is_file(), "install Debian's chromium (apt-get install chromium); .ci/run does"
    shots = _shots_folder(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            phone = browser.new_context(viewport=PHONE, locale="nl-NL", is_mobile=True)  # type: ignore[arg-type]
            phone.set_default_timeout(STEP_MS)
            anne = _login(phone, base, "anne", "/uploads")
            card = anne.locator("li.card").first
            assert card.locator("h2").inner_text() == "schoolreis"  # which upload this is
            assert card.locator("strong").inner_text() == "vastgehouden"
            assert "lijkt op een leerling" in card.inner_text()
            assert "Wacht op beoordeling door communicatie." in card.inner_text()
            assert anne.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            anne.screenshot(path=str(shots / "chain-held-phone.png"), full_page=True)

            desk = browser.new_context(viewport=DESKTOP, locale="nl-NL", accept_downloads=True)  # type: ignore[arg-type]
            desk.set_default_timeout(STEP_MS)
            carla = _login(desk, base, "carla", "/review")
            carla.locator(f'a[href="/review/{qid}"]').first.click()
            carla.wait_for_url(f"{base}/review/{qid}")
            carla.locator(f'img[src="/review/{qid}/preview/newsletter.jpg"]').wait_for()
            carla.get_by_role("button", name="Dit is Emma").click()
            carla.wait_for_url(f"{base}/review/{qid}#face-1")
            assert carla.locator("rect.face.hold").count() == 0
            carla.screenshot(path=str(shots / "chain-review-desktop.png"), full_page=True)
            carla.get_by_role("button", name="Alle vastgehouden kanalen goedkeuren").click()
            carla.wait_for_url(base + "/review")
            assert carla.get_by_role("status").first.inner_text().startswith("Goedgekeurd")

            anne.reload()
            card = anne.locator("li.card").first
            assert card.locator("strong").inner_text() == "gepubliceerd"
            figures = card.locator("figure img")
            assert figures.count() == 5  # every channel got its copy (Emma covered where she has no consent)
            for k in range(5):
                figures.nth(k).scroll_into_view_if_needed()
                assert anne.evaluate("(img) => img.complete && img.naturalWidth", figures.nth(k).element_handle()) > 0
            anne.screenshot(path=str(shots / "chain-published-phone.png"), full_page=True)

            carla.goto(base + "/comms/newsletter")
            store = Store(root / "state" / "photoguard.sqlite3")
            try:
                sha = str(store.one("SELECT sha256 FROM quarantine WHERE id=?", (qid,))["sha256"])  # type: ignore[index]
                rel = ledger.live_outputs(store, sha)["newsletter"]
            finally:
                store.close()
            name = PurePosixPath(rel).name
            carla.screenshot(path=str(shots / "chain-channel-desktop.png"), full_page=True)
            with carla.expect_download() as info:
                carla.get_by_role("link", name=f"Downloaden {name}").click()
            got = Path(info.value.path()).read_bytes()
            assert got == (root / rel).read_bytes()
            assert got[:2] == b"\xff\xd8" and b"Exif" not in got and b"schoolreis" not in got

            office = browser.new_context(viewport=DESKTOP, locale="nl-NL")  # type: ignore[arg-type]
            office.set_default_timeout(STEP_MS)
            pieter = _login(office, base, "pieter", "/review")
            pieter.goto(base + "/privacy/audit")
            rows = pieter.locator("table.list tbody tr")
            texts = rows.all_inner_texts()
            # in Dutch words, with the stored name after them (as the CSV and the CLI have it)
            for event, who in (("ingelogd (web.login)", "anne"), ("gezicht beoordeeld (review.face)", "carla"),
                               ("goedgekeurd in de webapp (web.approve)", "carla")):
                assert any(event in r and who in r for r in texts), (event, who, texts)
            pieter.screenshot(path=str(shots / "chain-audit-desktop.png"), full_page=True)
        finally:
            browser.close()
    for shot_name in SHOTS:
        shot = shots / f"{shot_name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000, shot


def _blocky_faces(_i: int, img: np.ndarray) -> None:
    """FACE_A and FACE_B painted as coarse random blocks on every frame (the fake detector finds a
    face where texture is; 8 px blocks survive H.264)."""
    rng = np.random.default_rng(5)
    for b in (FACE_A, FACE_B):
        x1, y1, x2, y2 = b.as_ints()
        blocks = rng.integers(0, 255, size=(-(-(y2 - y1) // 8), -(-(x2 - x1) // 8), 3), dtype=np.uint8)
        img[y1:y2, x1:x2] = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)[: y2 - y1, : x2 - x1]


def test_a_held_clip_in_a_real_browser(tmp_path: Path) -> None:
    """A clip in a teacher's folder, held (Emma only a near match); the reviewer sees four frames
    per held channel, redacted, with the faces outlined, on a desktop and on a phone."""
    from playwright.sync_api import sync_playwright

    root, pipe = make_school(tmp_path)
    users.add_user(pipe.store, "carla", Role.COMMS, (), hash_password(PASSWORD))
    pipe.store.close()
    clip = root / "inbox" / "juf-anne" / "toneel.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(make_clip([], size=(320, 200), frames=30, fps=10, paint=_blocky_faces))
    run = subprocess.run(
        [sys.executable, str(FAKE_CLI), "--near", "--", "--root", str(root), "process", "--json", str(clip)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == "held", result
    qid = str(result["quarantine_id"])
    shots = _shots_folder(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with web_server(root, near=True) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                ctx = browser.new_context(viewport=viewport, locale="nl-NL", is_mobile=width == "phone")  # type: ignore[arg-type]
                ctx.set_default_timeout(STEP_MS * 3)  # the first sheet runs the detectors on the clip
                page = _login(ctx, base, "carla", "/review")
                page.goto(f"{base}/review/{qid}")
                sheet = page.locator(f'img[src="/review/{qid}/clip/newsletter.jpg"]')
                sheet.scroll_into_view_if_needed()
                page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=sheet.element_handle())
                assert page.locator("figure.clipsheet").count() == 3  # newsletter, parro, guide are held
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
                page.screenshot(path=str(shots / f"clip-{width}.png"), full_page=True)
                ctx.close()
        finally:
            browser.close()
    for width in ("desktop", "phone"):
        shot = shots / f"clip-{width}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000, shot

"""A real browser against a real ``photoguard web`` process: Debian's chromium driven by
Playwright's Python package (no browser is downloaded; ``.ci/run`` installs chromium).

The server runs as a subprocess on 127.0.0.1 with a free port, with the fake face models
(``tests/support/fake_cli.py``). A reviewer logs in, opens the queue and the held photo, approves
it; a teacher looks at her uploads on a phone-sized screen. Screenshots go to the test's temporary
folder and are checked to be real pictures; with ``PHOTOGUARD_SCREENSHOTS=docs/screenshots`` they are
written there instead (how the pictures in docs/WEB.md are refreshed), so a plain test run never
changes the repository. The server is stopped by its PID.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoguard.ledger import ledger
from tests.integration.web.school import PASSWORD, make_web_school, web_server
from tests.support.shared import REPO

pytestmark = pytest.mark.timeout(180)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
def _shots_folder(tmp: Path) -> Path:
    chosen = os.environ.get("PHOTOGUARD_SCREENSHOTS")
    return (REPO / chosen) if chosen else tmp / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
STEP_MS = 20_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, object]]:
    school = make_web_school(tmp_path)
    school.pipe.store.close()
    with web_server(school.root) as base:
        yield base, school


def test_review_and_approve_in_a_real_browser(server: tuple[str, object], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from photoguard.ledger.db import Store

    base, school = server
    assert CHROMIUM.is_file(), "install Debian's chromium (apt-get install chromium); .ci/run does"
    SHOTS = _shots_folder(tmp_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = browser.new_context(viewport=DESKTOP, locale="nl-NL")
            ctx.set_default_timeout(STEP_MS)
            page = ctx.new_page()
            page.goto(base + "/review")
            assert page.url == base + "/login"  # no session: the login form
            page.screenshot(path=str(SHOTS / "login-desktop.png"))
            page.get_by_label("Gebruikersnaam").fill("carla")
            page.get_by_label("Wachtwoord").fill(PASSWORD)
            page.get_by_role("button", name="Inloggen").click()
            page.wait_for_load_state()
            assert page.url == base + "/review", page.content()
            assert page.get_by_role("heading", name="Foto's die op beoordeling wachten").is_visible()
            thumb = page.locator(f'img[src="/review/{school.qid}/thumb.jpg"]')  # type: ignore[attr-defined]
            thumb.wait_for()
            assert page.evaluate("(img) => img.naturalWidth", thumb.element_handle()) > 0
            page.screenshot(path=str(SHOTS / "queue-desktop.png"), full_page=True)
            page.get_by_role("link", name="Bekijken").click()
            page.wait_for_url(f"{base}/review/{school.qid}")  # type: ignore[attr-defined]
            preview = page.locator(f'img[src="/review/{school.qid}/preview/newsletter.jpg"]')  # type: ignore[attr-defined]
            preview.wait_for()
            assert page.evaluate("(img) => img.complete && img.naturalWidth", preview.element_handle()) > 0
            assert page.locator("rect.face.hold").count() >= 3  # one held face per held channel
            page.screenshot(path=str(SHOTS / "item-desktop.png"), full_page=True)
            page.get_by_role("button", name="Alle vastgehouden kanalen goedkeuren").click()
            page.wait_for_url(base + "/review")
            assert page.get_by_text("Er wacht niets op beoordeling.").is_visible()
            assert page.get_by_role("status").first.inner_text().startswith("Goedgekeurd")
            page.screenshot(path=str(SHOTS / "approved-desktop.png"), full_page=True)

            phone = browser.new_context(viewport=PHONE, locale="nl-NL", is_mobile=True)
            phone.set_default_timeout(STEP_MS)
            tpage = phone.new_page()
            tpage.goto(base + "/login")
            tpage.get_by_label("Gebruikersnaam").fill("anne")
            tpage.get_by_label("Wachtwoord").fill(PASSWORD)
            tpage.get_by_role("button", name="Inloggen").click()
            tpage.wait_for_url(base + "/uploads")
            assert tpage.get_by_role("heading", name="Mijn uploads").is_visible()
            tpage.locator("figure img").first.wait_for()
            tpage.screenshot(path=str(SHOTS / "uploads-phone.png"), full_page=True)
            # the teacher's browser cannot open the review page
            assert tpage.goto(base + "/review").status == 403  # type: ignore[union-attr]
        finally:
            browser.close()
    store = Store(school.root / "state" / "photoguard.sqlite3")  # type: ignore[attr-defined]
    try:
        sha = str(store.one("SELECT sha256 FROM quarantine WHERE id=?", (school.qid,))["sha256"])  # type: ignore[attr-defined,index]
        assert {"newsletter", "parro", "guide"} <= set(ledger.live_outputs(store, sha))
        events = [r["event"] for r in store.query("SELECT event FROM audit WHERE event LIKE 'web.%'")]
        assert events.count("web.login") == 2 and "web.approve" in events
    finally:
        store.close()
    for name in ("login-desktop", "queue-desktop", "item-desktop", "approved-desktop", "uploads-phone"):
        shot = SHOTS / f"{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000, shot

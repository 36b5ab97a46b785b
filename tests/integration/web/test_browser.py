"""A real browser against a real ``photoguard web`` process: Debian's chromium driven by
Playwright's Python package (no browser is downloaded; ``.ci/run`` installs chromium).

The server runs as a subprocess on 127.0.0.1 with a free port, with the fake face models
(``tests/support/fake_cli.py``, with FACE_A only a near match of Emma). A reviewer logs in, opens
the queue and the held photo, confirms the near-matched pupil ("Dit is Emma"), approves it, and
looks at the optional list (a published photo where Emma was redacted); a teacher looks at her
uploads on a phone-sized screen. Screenshots go to the test's temporary
folder and are checked to be real pictures; with ``PHOTOGUARD_SCREENSHOTS=docs/screenshots`` they are
written there instead (how the pictures in docs/WEB.md are refreshed), so a plain test run never
changes the repository. The server is stopped by its PID.
"""

from __future__ import annotations

import json
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


def _publish_with_emma_redacted(school: object) -> None:
    """One more photo of Emma's near match, published at once with her face redacted (the school's
    pipeline set to redact near matches and keep originals): the optional list's entry."""
    from photoguard.config import NearMatchPolicy, OriginalAction
    from photoguard.photo.pipeline import Pipeline
    from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector
    from tests.support.photos import make_photo
    from tests.support.text import FakeTextFinder

    base = school.pipe  # type: ignore[attr-defined]
    settings = base.settings.model_copy(
        update={
            "identify": base.settings.identify.model_copy(update={"near_match": NearMatchPolicy.REDACT}),
            "originals": base.settings.originals.model_copy(update={"action": OriginalAction.VAULT}),
        }
    )
    pipe = Pipeline(
        base.layout.root, settings, store=base.store, detector=FakeDetector([FACE_A, FACE_B]),
        templates=FakeTemplates({FACE_A: fake_vector(1) + fake_vector(7), FACE_B: fake_vector(2)}),  # type: ignore[arg-type]
        text=FakeTextFinder(), today=base.today,  # type: ignore[arg-type]
    )
    res = pipe.process_path(make_photo(base.layout.inbox / "juf-anne" / "musical.jpg", seed=21), uploader="juf-anne")
    assert res.status.value == "published"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, object]]:
    school = make_web_school(tmp_path)
    _publish_with_emma_redacted(school)
    school.pipe.store.close()
    with web_server(school.root, near=True) as base:
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
            assert page.get_by_text("Lijkt op: Emma (groep 7)").is_visible()
            page.screenshot(path=str(SHOTS / "item-desktop.png"), full_page=True)
            page.get_by_role("button", name="Dit is Emma").click()
            page.wait_for_url(f"{base}/review/{school.qid}#face-1")  # type: ignore[attr-defined]
            assert page.get_by_role("status").first.inner_text().startswith("Bevestigd")
            assert page.locator("rect.face.visible").count() >= 3  # visible where she has consent
            assert page.locator("rect.face.hold").count() == 0
            page.screenshot(path=str(SHOTS / "item-confirmed-desktop.png"), full_page=True)
            phone_review = browser.new_context(viewport=PHONE, locale="nl-NL", is_mobile=True)
            phone_review.add_cookies(ctx.cookies())
            ppage = phone_review.new_page()
            ppage.goto(f"{base}/review/{school.qid}")
            ppage.locator(f'img[src="/review/{school.qid}/preview/newsletter.jpg"]').wait_for()  # type: ignore[attr-defined]
            assert ppage.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
            ppage.screenshot(path=str(SHOTS / "item-phone.png"), full_page=True)
            page.get_by_role("button", name="Alle vastgehouden kanalen goedkeuren").click()
            page.wait_for_url(base + "/review")
            assert page.get_by_text("Er wacht niets op beoordeling.").is_visible()
            assert page.get_by_role("status").first.inner_text().startswith("Goedgekeurd")
            page.screenshot(path=str(SHOTS / "approved-desktop.png"), full_page=True)
            page.get_by_role("link", name="Optioneel").click()
            page.wait_for_url(base + "/review/optional")
            assert page.get_by_role("heading", name="Had zichtbaar kunnen zijn").is_visible()
            assert page.get_by_text("Lijkt op: Emma (groep 7)").is_visible()
            page.locator("li.card img").first.wait_for()
            page.screenshot(path=str(SHOTS / "optional-desktop.png"), full_page=True)
            ppage.goto(base + "/review/optional")
            ppage.locator("li.card img").first.wait_for()
            assert ppage.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            ppage.screenshot(path=str(SHOTS / "optional-phone.png"), full_page=True)
            page.get_by_role("button", name="Dit is Emma").click()
            page.wait_for_url(base + "/review/optional")
            assert page.get_by_role("status").first.inner_text().startswith("Opnieuw gepubliceerd")
            assert page.get_by_text("Er is niets om na te kijken.").is_visible()

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
        visible = {
            str(r["channel"]): json.loads(r["visible_pupils"])
            for r in store.query(
                "SELECT channel, visible_pupils FROM outputs WHERE source_sha256=? AND withdrawn_at IS NULL", (sha,)
            )
        }
        assert visible == {"newsletter": ["1001"], "parro": ["1001"], "guide": ["1001"], "website": [], "social": []}
        events = [r["event"] for r in store.query("SELECT event FROM audit WHERE event LIKE 'web.%'")]
        assert events.count("web.login") == 2 and "web.approve" in events
        assert [r["event"] for r in store.query("SELECT event FROM audit WHERE event LIKE '%.confirmed' OR "
                                                "event='review.face'")] == ["review.face", "optional.confirmed"]
    finally:
        store.close()
    for name in (
        "login-desktop", "queue-desktop", "item-desktop", "item-confirmed-desktop", "item-phone",
        "approved-desktop", "optional-desktop", "optional-phone", "uploads-phone",
    ):
        shot = SHOTS / f"{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000, shot

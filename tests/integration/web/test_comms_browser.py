"""Comms' and the privacy officer's pages in a real browser (Debian's chromium through Playwright,
the server a ``photoguard web`` subprocess stopped by its PID, as in ``test_browser.py``).

Comms logs in, opens a channel, downloads one file and a zip of two (Playwright downloads, the
bytes compared with the outbox), marks a takedown done. The privacy officer logs in and finds
both accounts' logins in the audit trail, filters it by account. Every new page is
photographed at phone (390 px) and desktop width into the test's temporary folder (or
``PHOTOGUARD_SCREENSHOTS``, see docs/WEB.md).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from photoguard.ledger import ledger
from photoguard.ledger.db import Store
from tests.integration.web.school import PASSWORD, WebSchool, make_web_school, web_server
from tests.integration.web.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, STEP_MS, _shots_folder

pytestmark = pytest.mark.timeout(240)

#: every new page: (screenshot name, URL, who looks)
PAGES = (
    ("comms", "/comms", "carla"),
    ("channel", "/comms/newsletter", "carla"),
    ("takedowns", "/comms/takedowns", "carla"),
    ("privacy", "/privacy", "pieter"),
    ("consents", "/privacy/consents", "pieter"),
    ("history", "/privacy/consents/1001", "pieter"),
    ("unconfirmed", "/privacy/unconfirmed", "pieter"),
    ("deletions", "/privacy/deletions", "pieter"),
    ("report", "/privacy/report", "pieter"),
    ("audit", "/privacy/audit", "pieter"),
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, WebSchool]]:
    school = make_web_school(tmp_path)
    store = school.pipe.store
    out = ledger.live_outputs(store, school.anne_sha)["website"]
    with store.transaction() as conn:
        ledger.add_takedown_in(
            conn, "2026-11-30T09:15:00+00:00", "website", out, "c" * 64, "1002", "no consent for website"
        )
        conn.execute("UPDATE pupils SET confirmed_at='2025-06-01T08:00:00+00:00' WHERE pupil_id='1002'")
        conn.execute(
            "INSERT INTO deletion_log(at, kind, ref, sha256, channel, reason) VALUES(?,?,?,?,?,?)",
            ("2026-11-29T23:10:00+00:00", "quarantine", "0123456789abcdef", "d" * 64, None, "held for 30 days"),
        )
    store.close()
    with web_server(school.root) as base:
        yield base, school


def _login(page: Any, base: str, login: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Gebruikersnaam").fill(login)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(base + "/review")


def _name(root: Path, sha: str, channel: str = "newsletter") -> str:
    store = Store(root / "state" / "photoguard.sqlite3")
    try:
        return PurePosixPath(ledger.live_outputs(store, sha)[channel]).name
    finally:
        store.close()


def test_comms_downloads_and_privacy_reads_the_audit_in_a_real_browser(
    server: tuple[str, WebSchool], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, school = server
    assert CHROMIUM.is_file(), "install Debian's chromium (apt-get install chromium); .ci/run does"
    shots = _shots_folder(tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    outbox = school.root / "outbox" / "newsletter"
    anne, bob = _name(school.root, school.anne_sha), _name(school.root, school.bob_sha)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = browser.new_context(viewport=DESKTOP, locale="nl-NL", accept_downloads=True)  # type: ignore[arg-type]
            ctx.set_default_timeout(STEP_MS)
            page = ctx.new_page()
            _login(page, base, "carla")
            page.get_by_role("link", name="Kanalen").click()
            page.wait_for_url(base + "/comms")
            page.get_by_role("link", name="Nieuwsbrief").click()
            page.wait_for_url(base + "/comms/newsletter")
            assert page.get_by_text("Uw eerste bezoek").is_visible()
            thumb = page.locator(f'img[src="/comms/newsletter/thumb/{anne}"]')
            thumb.wait_for()
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
            assert page.locator("li.file.new").count() == 2  # the first visit: everything is new
            page.screenshot(path=str(shots / "channel-new-desktop.png"), full_page=True)
            with page.expect_download() as info:
                page.get_by_role("link", name=f"Downloaden {anne}").click()
            download = info.value
            assert download.suggested_filename == anne
            assert Path(download.path()).read_bytes() == (outbox / anne).read_bytes()
            page.get_by_label(f"Selecteer {anne}").check()
            page.get_by_label(f"Selecteer {bob}").check()
            with page.expect_download() as info:
                page.get_by_role("button", name="Selectie downloaden als zip").first.click()
            with zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes())) as zf:
                assert sorted(zf.namelist()) == sorted([anne, bob])
                assert zf.read(bob) == (outbox / bob).read_bytes()
            page.goto(base + "/comms/takedowns")
            page.get_by_role("button", name="Gedaan").click()
            page.wait_for_url(base + "/comms/takedowns")
            assert page.get_by_role("status").first.inner_text().startswith("Gemarkeerd als gedaan")

            priv = browser.new_context(viewport=DESKTOP, locale="nl-NL")  # type: ignore[arg-type]
            priv.set_default_timeout(STEP_MS)
            ppage = priv.new_page()
            _login(ppage, base, "pieter")
            ppage.get_by_role("link", name="Privacy").click()
            ppage.get_by_role("link", name="Audittrail").click()
            ppage.wait_for_url(base + "/privacy/audit")
            table = ppage.locator("table.list tbody")
            logins = [r.inner_text() for r in table.locator("tr", has_text="web.login").all()]
            assert any("carla" in r for r in logins) and any("pieter" in r for r in logins)
            ppage.get_by_label("Wie").select_option(label="carla")
            ppage.get_by_role("button", name="Filteren").click()
            ppage.wait_for_url("**/privacy/audit?who=*")
            whos = table.locator('td[data-label="Wie"]').all_inner_texts()
            assert whos and set(whos) == {"carla"}
            assert "web.takedown_done" in table.inner_text()

            for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                for who in ("carla", "pieter"):
                    c = browser.new_context(viewport=viewport, locale="nl-NL", is_mobile=width == "phone")  # type: ignore[arg-type]
                    c.set_default_timeout(STEP_MS)
                    pg = c.new_page()
                    _login(pg, base, who)
                    for name, url, looker in PAGES:
                        if looker != who:
                            continue
                        pg.goto(base + url)
                        pg.wait_for_load_state("networkidle")
                        assert pg.locator("h1").first.is_visible(), url
                        # nothing wider than the screen on a phone (tables become cards)
                        assert pg.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1, url
                        pg.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
                    c.close()
        finally:
            browser.close()
    store = Store(school.root / "state" / "photoguard.sqlite3")
    try:
        events = [r["event"] for r in store.query("SELECT event FROM audit WHERE event LIKE 'web.%'")]
        assert "web.takedown_done" in events and events.count("web.login") >= 2
    finally:
        store.close()
    for name, _url, _who in (*PAGES, ("channel-new", "", "")):
        for width in ("desktop", "phone") if _url else ("desktop",):
            shot = shots / f"{name}-{width}.png"
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000, shot

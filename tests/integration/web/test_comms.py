"""Comms' channel pages through the web app: published files newest first, "new since your last
visit" kept per account in the database, one file and a zip of a selection to download, the
takedown list with a done mark (POST, CSRF, audited with the account id)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image

from photoguard.ledger import desk, ledger, users
from photoguard.ledger.db import SCHEMA_VERSION, Store
from tests.integration.web.school import WebSchool, audit_rows, csrf_of, make_web_school
from tests.support.photos import make_photo

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def school(tmp_path: Path) -> WebSchool:
    return make_web_school(tmp_path)


def _name(s: WebSchool, sha: str, channel: str = "newsletter") -> str:
    return PurePosixPath(ledger.live_outputs(s.pipe.store, sha)[channel]).name


def _shown(page: str, channel: str = "newsletter") -> list[str]:
    """The file names a channel page lists, in page order."""
    return re.findall(rf'href="/comms/{channel}/file/([^"]+)" download>', page)[::2]


def _publish(s: WebSchool, name: str, seed: int) -> str:
    r = s.pipe.process_path(make_photo(s.root / "inbox" / "juf-anne" / name, seed=seed), uploader="juf-anne")
    assert r.status.value == "published" and r.sha256
    return r.sha256


def _takedown(s: WebSchool, reason: str = "consent withdrawn for newsletter") -> int:
    out = ledger.live_outputs(s.pipe.store, s.anne_sha)["newsletter"]
    with s.pipe.store.transaction() as conn:
        return ledger.add_takedown_in(conn, "2026-11-30T09:15:00+00:00", "newsletter", out, "a" * 64, "1001", reason)


def test_comms_sees_the_channels_files_newest_first_with_thumbnails(school: WebSchool) -> None:
    c = school.login("carla")
    index = c.get("/comms")
    assert index.status_code == 200 and 'href="/comms/newsletter"' in index.text and "Nieuwsbrief" in index.text
    page = c.get("/comms/newsletter")
    assert page.status_code == 200
    assert _shown(page.text) == [_name(school, school.bob_sha), _name(school, school.anne_sha)]  # newest first
    newer = _publish(school, "sportdag.jpg", seed=11)
    page = c.get("/comms/newsletter").text
    assert _shown(page)[0] == _name(school, newer)
    thumb = c.get(f"/comms/newsletter/thumb/{_name(school, newer)}")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.headers["cache-control"] == "no-store"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320


def test_new_since_the_last_visit_is_kept_per_account_and_channel(school: WebSchool) -> None:
    c = school.login("carla")
    assert "2 nieuw" in c.get("/comms").text.replace("\n", " ")  # never visited: everything is new
    first = c.get("/comms/newsletter").text
    assert "Uw eerste bezoek" in first and first.count('class="file new"') == 2
    again = c.get("/comms/newsletter").text
    assert "0 nieuw sinds je vorige bezoek" in again and 'class="file new"' not in again
    newer = _publish(school, "sportdag.jpg", seed=11)
    index = c.get("/comms").text
    row = re.search(r'href="/comms/newsletter">.*?</tr>', index, re.S)
    assert row and "1 nieuw" in row.group(0)
    page = c.get("/comms/newsletter").text
    assert "1 nieuw sinds je vorige bezoek" in page
    assert re.findall(r'<li class="file new">.*?value="([^"]+)"', page, re.S) == [_name(school, newer)]
    # kept in the database: a new app (a restart) knows the visit; another account does not
    carla = users.get_user(school.pipe.store, "carla")
    assert carla and desk.last_visits(school.pipe.store, carla.id)["newsletter"].seen_output > 0
    school.app = school.new_app()
    assert "0 nieuw sinds je vorige bezoek" in school.login("carla").get("/comms/newsletter").text
    assert "Uw eerste bezoek" in school.login("pieter").get("/comms/newsletter").text


def test_download_one_file_as_published(school: WebSchool) -> None:
    c = school.login("carla")
    name = _name(school, school.anne_sha)
    r = c.get(f"/comms/newsletter/file/{name}")
    assert r.status_code == 200
    assert r.content == (school.root / "outbox" / "newsletter" / name).read_bytes()
    assert r.headers["content-disposition"].startswith("attachment")
    assert name in r.headers["content-disposition"]


def test_zip_of_a_selection_holds_exactly_the_chosen_published_files(school: WebSchool) -> None:
    c = school.login("carla")
    page = c.get("/comms/newsletter").text
    names = [_name(school, school.anne_sha), _name(school, school.bob_sha)]
    r = c.post("/comms/newsletter/zip", data={"csrf_token": csrf_of(page), "file": names})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        assert sorted(zf.namelist()) == sorted(names)
        for n in names:
            assert zf.read(n) == (school.root / "outbox" / "newsletter" / n).read_bytes()
    # nothing chosen: back to the page with a message, no zip
    r = c.post("/comms/newsletter/zip", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and "Kies eerst" in c.get("/comms/newsletter").text


def test_a_file_the_ledger_does_not_know_or_a_withdrawn_one_is_not_served(school: WebSchool) -> None:
    c = school.login("carla")
    name = _name(school, school.anne_sha)
    stray = school.root / "outbox" / "website" / "stray.jpg"  # in the folder, not in the ledger
    stray.write_bytes((school.root / "outbox" / "newsletter" / name).read_bytes())
    assert c.get("/comms/website/file/stray.jpg").status_code == 404
    assert c.get("/comms/website/thumb/stray.jpg").status_code == 404
    with school.pipe.store.transaction() as conn:
        oid = conn.execute(
            "SELECT id FROM outputs WHERE source_sha256=? AND channel='newsletter'", (school.anne_sha,)
        ).fetchone()["id"]
        ledger.withdraw_in(conn, int(oid), "test", "2026-12-01T00:00:00+00:00")
    assert c.get(f"/comms/newsletter/file/{name}").status_code == 404
    page = c.get("/comms/newsletter").text
    assert name not in page
    r = c.post("/comms/newsletter/zip", data={"csrf_token": csrf_of(page), "file": [name]})
    assert r.status_code == 404 and r.content[:2] != b"PK"


def test_takedown_done_mark_is_audited_with_the_account(school: WebSchool) -> None:
    tid = _takedown(school)
    c = school.login("carla")
    page = c.get("/comms/takedowns").text
    assert f'action="/comms/takedowns/{tid}/done"' in page
    assert "30-11-2026 10:15" in page  # 09:15 UTC in Amsterdam, the Dutch way
    r = c.post(f"/comms/takedowns/{tid}/done", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303
    page = c.get("/comms/takedowns").text
    assert "Gemarkeerd als gedaan" in page and "(carla)" in page
    assert f'action="/comms/takedowns/{tid}/done"' not in page
    carla = users.get_user(school.pipe.store, "carla")
    assert carla is not None
    rows = audit_rows(school, "web.takedown_done")
    assert [(r["channel"], r["detail"]["account"], r["detail"]["takedown"]) for r in rows] == [  # type: ignore[index]
        ("newsletter", carla.id, tid)
    ]
    # a second mark changes nothing and is not audited again
    c.post(f"/comms/takedowns/{tid}/done", data={"csrf_token": csrf_of(page)})
    assert len(audit_rows(school, "web.takedown_done")) == 1
    # the privacy officer reads the list with the mark, without a button
    priv = school.login("pieter").get("/privacy/takedowns").text
    assert "(carla)" in priv and "/done" not in priv


@pytest.mark.parametrize("version", [3, 4])
def test_the_visit_table_arrives_by_migration_in_an_older_database(tmp_path: Path, version: int) -> None:
    """Version 4 had the optional list but not the desk; version 3 had neither: both arrive."""
    school = make_web_school(tmp_path)
    path = school.root / "state" / "photoguard.sqlite3"
    with school.pipe.store.transaction() as conn:
        conn.execute("DROP TABLE web_visits")
        conn.execute("DROP TABLE face_decisions")  # version 6
        conn.execute("ALTER TABLE takedowns DROP COLUMN done_at")
        conn.execute("ALTER TABLE takedowns DROP COLUMN done_by")
        if version == 3:
            conn.execute("DROP TABLE optional_faces")
    school.pipe.store.execute(f"PRAGMA user_version={version}")
    school.pipe.store.close()
    store = Store(path)
    try:
        assert store.one("PRAGMA user_version")[0] == SCHEMA_VERSION == 6  # type: ignore[index]
        assert desk.visit(store, 1, "newsletter", 5) is None
        assert desk.takedown_marks(store) == {}
        assert store.one("SELECT COUNT(*) FROM optional_faces")[0] == 0  # type: ignore[index]
    finally:
        store.close()

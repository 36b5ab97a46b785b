"""Security of comms' and the privacy officer's pages: no session, no page and no byte of a file
or zip; each role only its pages (names for the privacy role only); POSTs need the CSRF token;
path traversal in every URL parameter finds nothing; stored text is escaped in the pages and
neutralised in every CSV export."""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

import pytest

from photoguard.ledger import desk, ledger
from photoguard.ledger.audit import AuditEvent
from photoguard.ledger.consent import Registry
from tests.integration.web.school import WebSchool, audit_rows, csrf_of, make_web_school
from tests.support.school import TWO_PUPILS, consent_csv, import_consent

pytestmark = pytest.mark.timeout(180)

#: the privacy officer's lists (each also as ``.csv``); those with names first
NAMED = ["/privacy/consents", "/privacy/consents/1001", "/privacy/unconfirmed"]
UNNAMED = ["/privacy", "/privacy/takedowns", "/privacy/deletions", "/privacy/report", "/privacy/audit"]
CSVS = [p + ".csv" for p in NAMED + UNNAMED[1:]] + ["/comms/takedowns.csv"]
EVIL_HTML = '<script>alert("x")</script><img src=x onerror=alert(1)>'
FORMULAS = ('=HYPERLINK("http://evil.example","klik")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def school(tmp_path: Path) -> WebSchool:
    return make_web_school(tmp_path)


def _file(s: WebSchool, channel: str = "newsletter") -> str:
    return PurePosixPath(ledger.live_outputs(s.pipe.store, s.anne_sha)[channel]).name


def _takedown(s: WebSchool, reason: str) -> int:
    out = ledger.live_outputs(s.pipe.store, s.anne_sha)["newsletter"]
    with s.pipe.store.transaction() as conn:
        return ledger.add_takedown_in(conn, "2026-11-30T09:15:00+00:00", "newsletter", out, "a" * 64, "1001", reason)


def _comms_urls(s: WebSchool) -> list[str]:
    name = _file(s)
    return [
        "/comms",
        "/comms/newsletter",
        f"/comms/newsletter/thumb/{name}",
        f"/comms/newsletter/file/{name}",
        "/comms/takedowns",
        "/comms/takedowns.csv",
    ]


def test_without_a_session_no_page_no_file_no_zip(school: WebSchool) -> None:
    tid = _takedown(school, "consent withdrawn")
    c = school.client()
    for url in _comms_urls(school) + NAMED + UNNAMED + CSVS:
        r = c.get(url)
        assert r.status_code == 303 and r.headers["location"] == "/login", url
        assert r.content == b"", url
        j = c.get(url, headers={"accept": "application/json"})
        assert j.status_code == 401 and j.json() == {"error": "login required"}, url
    for url, data in (
        ("/comms/newsletter/zip", {"file": [_file(school)], "csrf_token": "x"}),
        (f"/comms/takedowns/{tid}/done", {"csrf_token": "x"}),
    ):
        r = c.post(url, data=data)
        assert r.status_code == 303 and r.content == b"", url
    assert desk.takedown_marks(school.pipe.store) == {}


@pytest.mark.parametrize("login", ["anne", "bob"])
def test_a_teacher_gets_403_on_every_comms_and_privacy_url(school: WebSchool, login: str) -> None:
    tid = _takedown(school, "consent withdrawn")
    c = school.login(login)
    for url in _comms_urls(school) + NAMED + UNNAMED + CSVS:
        r = c.get(url)
        assert r.status_code == 403, url
        assert not r.headers["content-type"].startswith(("image/", "text/csv", "application/zip")), url
    token = csrf_of(c.get("/uploads").text)
    r = c.post("/comms/newsletter/zip", data={"file": [_file(school)], "csrf_token": token})
    assert r.status_code == 403 and r.content[:2] != b"PK"
    assert c.post(f"/comms/takedowns/{tid}/done", data={"csrf_token": token}).status_code == 403
    assert desk.takedown_marks(school.pipe.store) == {}


def test_comms_gets_no_privacy_page_and_admin_no_names(school: WebSchool) -> None:
    carla = school.login("carla")
    for url in NAMED + UNNAMED + [p for p in CSVS if p.startswith("/privacy")]:
        r = carla.get(url)
        assert r.status_code == 403, url
        assert "Emma" not in r.text and "Vries" not in r.text, url
    ad = school.login("ad")
    for url in NAMED + [p for p in CSVS if p.startswith(tuple(NAMED))]:
        r = ad.get(url)
        assert r.status_code == 403 and "Vries" not in r.text, url
    for url in UNNAMED:
        assert ad.get(url).status_code == 200, url
    # the privacy officer reads comms' pages but cannot mark a takedown done
    tid = _takedown(school, "consent withdrawn")
    pieter = school.login("pieter")
    assert pieter.get("/comms/newsletter").status_code == 200
    page = pieter.get("/comms/takedowns").text
    assert "/done" not in page
    assert pieter.post(f"/comms/takedowns/{tid}/done", data={"csrf_token": csrf_of(page)}).status_code == 403
    assert desk.takedown_marks(school.pipe.store) == {}


def test_posts_without_or_with_a_wrong_csrf_token_are_refused(school: WebSchool) -> None:
    tid = _takedown(school, "consent withdrawn")
    c = school.login("carla")
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
        r = c.post("/comms/newsletter/zip", data={**data, "file": [_file(school)]})
        assert r.status_code == 403 and r.content[:2] != b"PK"
        assert c.post(f"/comms/takedowns/{tid}/done", data=data).status_code == 403
    # another session's token is wrong too
    other = csrf_of(school.login("ad").get("/comms/takedowns").text)
    assert c.post(f"/comms/takedowns/{tid}/done", data={"csrf_token": other}).status_code == 403
    assert desk.takedown_marks(school.pipe.store) == {} and audit_rows(school, "web.takedown_done") == []


@pytest.mark.parametrize(
    "url",
    [
        "/comms/..%2f..%2fstate",
        "/comms/%2e%2e",
        "/comms/..%2fstate/file/photoguard.key",
        "/comms/newsletter%2f..%2f..%2fstate/file/photoguard.key",
        "/comms/newsletter/file/..%2f..%2fstate%2fphotoguard.key",
        "/comms/newsletter/file/..%2f..%2fstate%2fphotoguard.sqlite3",
        "/comms/newsletter/file/%2e%2e",
        "/comms/newsletter/file/.%2e%2f.%2e%2fphotoguard.toml",
        "/comms/newsletter/file/..%5c..%5cphotoguard.toml",
        "/comms/newsletter/file/{name}%00.key",
        "/comms/newsletter/thumb/..%2f..%2fquarantine",
        "/comms/newsletter/thumb/..%2fwebsite%2f{name}",
        "/privacy/consents/..%2f..%2fstate",
        "/privacy/consents/%2e%2e.csv",
        "/privacy/consents/1001%2f..%2f1002",
        "/comms/takedowns/..%2f1",
    ],
)
def test_path_traversal_in_every_url_parameter_finds_nothing(school: WebSchool, url: str) -> None:
    target = url.format(name=_file(school))
    for login in ("carla", "pieter"):
        r = school.login(login).get(target)
        assert r.status_code in (403, 404), (login, target, r.status_code)
        assert b"SQLite" not in r.content and b"[paths]" not in r.content and len(r.content) < 20_000


def test_a_zip_refuses_names_outside_the_channel(school: WebSchool) -> None:
    c = school.login("carla")
    token = csrf_of(c.get("/comms/newsletter").text)
    (school.root / "quarantine" / "secret.jpg").write_bytes(b"\xff\xd8original")
    for bad in (
        "../../state/photoguard.key",
        "../../quarantine/secret.jpg",
        "/etc/passwd",
        "..",
        ".hidden",
        f"../website/{_file(school, 'website')}",
        "a/b.jpg",
    ):
        r = c.post("/comms/newsletter/zip", data={"csrf_token": token, "file": [_file(school), bad]})
        assert r.status_code == 404 and r.content[:2] != b"PK", bad


def _evil_school(tmp_path: Path) -> WebSchool:
    s = make_web_school(tmp_path)
    evil_pupil = ("1003", EVIL_HTML, "", FORMULAS[0], FORMULAS[2], "", "ja", "ja", "ja", "ja", "ja", "nee", "nee")
    import_consent(s.pipe.store, s.root / "c2.csv", consent_csv([*TWO_PUPILS, evil_pupil]))
    Registry(s.pipe.store).set_consent("1003", "newsletter", False, FORMULAS[1])
    with s.pipe.store.transaction() as conn:
        conn.execute("UPDATE pupils SET confirmed_at='2024-01-01T00:00:00+00:00' WHERE pupil_id='1003'")
        conn.execute(
            "INSERT INTO deletion_log(at, kind, ref, sha256, channel, reason) VALUES(?,?,?,?,?,?)",
            ("2026-11-30T10:00:00+00:00", FORMULAS[3], FORMULAS[0], None, None, EVIL_HTML),
        )
    _takedown(s, FORMULAS[0] + EVIL_HTML)
    s.pipe.store.audit(AuditEvent(FORMULAS[2], channel=FORMULAS[1], detail={"note": EVIL_HTML}))
    return s


def test_html_in_names_reasons_and_audit_details_is_escaped(tmp_path: Path) -> None:
    s = _evil_school(tmp_path)
    pages = [s.login("pieter").get(u).text for u in [*NAMED[:1], "/privacy/consents/1003", *NAMED[2:], *UNNAMED]]
    pages += [s.login("carla").get(u).text for u in ("/comms/takedowns", "/comms")]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
    joined = "".join(pages)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in joined
    assert joined.count("&lt;script&gt;") >= 5  # name, takedown reason (twice), deletion log, audit detail


def _cells(body: bytes) -> list[str]:
    assert body.startswith(b"\xef\xbb\xbf")
    return [cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";") for cell in row]


def test_formulas_are_neutralised_in_every_csv_export(tmp_path: Path) -> None:
    s = _evil_school(tmp_path)
    pieter, carla = s.login("pieter"), s.login("carla")
    seen: set[str] = set()
    for url in CSVS:
        client = carla if url.startswith("/comms") else pieter
        url = url.replace("1001", "1003")
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), url
        assert r.headers["content-disposition"].startswith("attachment")
        for cell in _cells(r.content):
            assert not cell.lstrip(" ").startswith(FORMULA_START) or cell.strip() == "-", (url, cell)
            seen.update(f for f in FORMULAS if cell == "'" + f)
    assert seen == set(FORMULAS)  # each one reached some export, neutralised

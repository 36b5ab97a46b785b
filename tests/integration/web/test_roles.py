"""What each role sees and must not see, the review actions through the web (CSRF, audit with the
account id), path traversal in URL parameters, and escaping of stored text."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from photoguard.ledger import ledger, users
from tests.integration.web.school import WebSchool, audit_rows, csrf_of, make_web_school
from tests.support.school import held_original

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def school(tmp_path: Path) -> WebSchool:
    return make_web_school(tmp_path)


def _id(s: WebSchool, login: str) -> int:
    u = users.get_user(s.pipe.store, login)
    assert u is not None
    return u.id


@pytest.mark.parametrize("login", ["carla", "pieter"])
def test_reviewers_see_the_queue_item_and_redacted_previews(school: WebSchool, login: str) -> None:
    c = school.login(login)
    queue = c.get("/review")
    assert queue.status_code == 200
    assert f"/review/{school.qid}/thumb.jpg" in queue.text
    assert "lijkt op een leerling met toestemming" in queue.text  # the reason, in Dutch
    item = c.get(f"/review/{school.qid}")
    assert item.status_code == 200
    for ch in ("newsletter", "parro", "guide"):
        assert f'action="/review/{school.qid}/approve"' in item.text and f'value="{ch}"' in item.text
    assert 'class="face hold"' in item.text and "wacht op beoordeling" in item.text
    for url in (f"/review/{school.qid}/thumb.jpg", f"/review/{school.qid}/preview/newsletter.jpg"):
        r = c.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "no-store"
        img = Image.open(io.BytesIO(r.content))
        assert not img.getexif()  # a fresh file, no metadata
    assert audit_rows(school, "web.original_viewed") == []  # previews are not the original


def test_the_preview_is_redacted_where_the_original_is_not(school: WebSchool) -> None:
    c = school.login("carla")
    preview = Image.open(io.BytesIO(c.get(f"/review/{school.qid}/preview/newsletter.jpg").content)).convert("L")
    original = Image.open(io.BytesIO(held_original(school.root, school.qid))).convert("L").resize(preview.size)
    # face 1 (FACE_A, 40..120 x 40..130 on a 320x200 photo) is filled in the preview
    sx, sy = preview.size[0] / 320, preview.size[1] / 200
    box = (int(60 * sx), int(60 * sy), int(100 * sx), int(110 * sy))
    face_prev = list(preview.crop(box).getdata())
    face_orig = list(original.crop(box).getdata())
    spread = max(face_prev) - min(face_prev)
    assert spread < max(face_orig) - min(face_orig)
    assert spread < 40  # a flat fill, not the textured face


def test_the_original_is_served_on_request_and_audited(school: WebSchool) -> None:
    c = school.login("pieter")
    r = c.get(f"/review/{school.qid}/original")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == held_original(school.root, school.qid)
    rows = audit_rows(school, "web.original_viewed")
    assert [row["detail"] for row in rows] == [{"account": _id(school, "pieter"), "id": school.qid}]


@pytest.mark.parametrize("login", ["anne", "bob", "ad"])
def test_teachers_and_admin_get_no_review_page_preview_or_original(school: WebSchool, login: str) -> None:
    c = school.login(login)
    for path in (
        "/review",
        f"/review/{school.qid}",
        f"/review/{school.qid}/thumb.jpg",
        f"/review/{school.qid}/preview/newsletter.jpg",
        f"/review/{school.qid}/original",
    ):
        r = c.get(path)
        assert r.status_code == 403, path
        assert not r.headers["content-type"].startswith("image/")
    page = c.get("/review").text
    r = c.post(f"/review/{school.qid}/approve", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 403
    r = c.post(f"/review/{school.qid}/reject", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 403
    assert audit_rows(school, "web.original_viewed") == []
    assert ledger.quarantine_item(school.pipe.store, school.qid)["resolved_at"] is None  # type: ignore[index]


def test_a_teacher_sees_only_her_own_uploads(school: WebSchool) -> None:
    anne = school.login("anne")
    assert anne.get("/").headers["location"] == "/uploads"
    page = anne.get("/uploads")
    assert page.status_code == 200
    assert "juf-anne" in page.text and "gepubliceerd" in page.text
    assert f"/uploads/{school.anne_sha}/newsletter" in page.text
    assert school.bob_sha not in page.text and "meester-bob" not in page.text
    r = anne.get(f"/uploads/{school.anne_sha}/newsletter")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    outbox = school.root / "outbox" / "newsletter"
    assert r.content in {p.read_bytes() for p in outbox.iterdir() if p.is_file()}
    # bob's upload by direct URL: the same answer as a file that does not exist
    for channel in ("newsletter", "website"):
        assert anne.get(f"/uploads/{school.bob_sha}/{channel}").status_code == 404
    assert anne.get(f"/uploads/{'0' * 64}/newsletter").status_code == 404
    bob = school.login("bob")
    assert school.anne_sha not in bob.get("/uploads").text
    assert bob.get(f"/uploads/{school.anne_sha}/newsletter").status_code == 404


@pytest.mark.parametrize("login", ["carla", "ad"])
def test_others_do_not_get_the_teachers_page(school: WebSchool, login: str) -> None:
    c = school.login(login)
    assert c.get("/uploads").status_code == 403
    assert c.get(f"/uploads/{school.anne_sha}/newsletter").status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/review/..%2f..%2fstate/original",
        "/review/../../state/photoguard.key",
        "/review/%2e%2e/original",
        "/review/{qid}/preview/..%2f..%2fstate%2fphotoguard.key.jpg",
        "/review/{qid}/preview/newsletter%00.jpg",
        "/uploads/{sha}/..%2f..%2fstate",
        "/uploads/..%2f..%2fstate%2fphotoguard.sqlite3/newsletter",
        "/static/..%2fapp.py",
        "/static/%2e%2e/passwords.py",
    ],
)
def test_path_traversal_in_url_parameters_finds_nothing(school: WebSchool, path: str) -> None:
    c = school.login("pieter")
    r = c.get(path.format(qid=school.qid, sha=school.anne_sha))
    assert r.status_code in (403, 404)
    assert b"scrypt" not in r.content and b"SQLite" not in r.content and b"import" not in r.content
    t = school.login("anne")
    r = t.get(path.format(qid=school.qid, sha=school.anne_sha))
    assert r.status_code in (403, 404)


def test_approve_needs_the_csrf_token(school: WebSchool) -> None:
    c = school.login("carla")
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": "", "channel": "newsletter"}):
        r = c.post(f"/review/{school.qid}/approve", data=data)
        assert r.status_code == 403
    r = c.post(f"/review/{school.qid}/reject", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert audit_rows(school, "review.approve") == [] and audit_rows(school, "review.reject") == []
    assert "newsletter" not in ledger.live_outputs(
        school.pipe.store, school.pipe.store.one("SELECT sha256 FROM quarantine WHERE id=?", (school.qid,))["sha256"]
    )  # type: ignore[index]


def test_approve_one_channel_then_the_rest(school: WebSchool) -> None:
    c = school.login("carla")
    page = c.get(f"/review/{school.qid}").text
    r = c.post(f"/review/{school.qid}/approve", data={"csrf_token": csrf_of(page), "channel": "newsletter"})
    assert r.status_code == 303 and r.headers["location"] == f"/review/{school.qid}"
    sha = str(school.pipe.store.one("SELECT sha256 FROM quarantine WHERE id=?", (school.qid,))["sha256"])  # type: ignore[index]
    assert "newsletter" in ledger.live_outputs(school.pipe.store, sha)
    assert "parro" not in ledger.live_outputs(school.pipe.store, sha)
    page = c.get(f"/review/{school.qid}").text
    assert "Goedgekeurd: Nieuwsbrief" in page  # the channel as staff know it
    assert 'value="newsletter"' not in page and 'value="parro"' in page
    r = c.post(f"/review/{school.qid}/approve", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == "/review"
    assert {"newsletter", "parro", "guide", "website", "social"} <= set(ledger.live_outputs(school.pipe.store, sha))
    assert "Er wacht niets op beoordeling" in c.get("/review").text
    carla = _id(school, "carla")
    rows = audit_rows(school, "web.approve")
    assert [(r["channel"], r["detail"]["account"], r["detail"]["outcome"]) for r in rows] == [
        ("newsletter", carla, "held"),
        (None, carla, "published"),
    ]
    assert len(audit_rows(school, "review.approve")) == 2  # the Review API's own events
    assert c.get(f"/review/{school.qid}/original").status_code == 404  # deleted once published


def test_reject_deletes_the_original_and_audits(school: WebSchool) -> None:
    c = school.login("pieter")
    page = c.get(f"/review/{school.qid}").text
    r = c.post(f"/review/{school.qid}/reject", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303
    assert not (school.root / "quarantine" / school.qid).exists()
    assert [r["detail"] for r in audit_rows(school, "web.reject")] == [
        {"account": _id(school, "pieter"), "id": school.qid}
    ]
    assert "Afgewezen" in c.get("/review").text
    # a second reject is refused with a message, nothing breaks
    r = c.post(f"/review/{school.qid}/reject", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303
    assert "lukte niet" in c.get(f"/review/{school.qid}").text


def test_stored_text_is_escaped(school: WebSchool) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    with school.pipe.store.transaction() as conn:
        ledger.hold_in(conn, "00000000deadbeef", "f" * 64, "held", evil, ["newsletter"])
    c = school.login("carla")
    for page in (c.get("/review").text, c.get("/review/00000000deadbeef").text):
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert c.get("/review/00000000deadbeef/thumb.jpg").status_code == 404  # no original, no preview


def test_english_reasons_and_times_in_amsterdam(school: WebSchool) -> None:
    c = school.login("carla")
    page = c.get("/review", headers={"accept-language": "en"}).text
    assert "uncertain match to a consenting pupil" in page
    created = str(school.pipe.store.one("SELECT created_at FROM quarantine WHERE id=?", (school.qid,))["created_at"])  # type: ignore[index]
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromisoformat(created).astimezone(ZoneInfo("Europe/Amsterdam"))
    assert f"{local.day}-{local.month}-{local.year} {local:%H:%M}" in page


def test_a_teacher_sees_why_her_photo_was_held(school: WebSchool) -> None:
    """The held photo came from juf-anne's folder: its row carries her folder, so she sees it
    with its status and reason (and bob, of another folder, does not)."""
    row = school.pipe.store.one("SELECT uploader, status FROM photos WHERE quarantine_id=?", (school.qid,))
    assert row is not None and row["uploader"] == "juf-anne" and row["status"] == "held"
    page = school.login("anne").get("/uploads")
    assert page.status_code == 200 and "vastgehouden" in page.text
    assert "vastgehouden" not in school.login("bob").get("/uploads").text


def test_a_teacher_knows_her_uploads_by_name_without_pupils_names(school: WebSchool) -> None:
    """Each upload shows its file name as the ledger keeps it; a pupil's name in it is taken out."""
    from tests.support.photos import make_photo

    photo = make_photo(school.root / "inbox" / "juf-anne" / "Emma de Vries verjaardag.jpg", seed=31)
    assert school.pipe.process_path(photo, uploader="juf-anne").status.value == "published"
    page = school.login("anne").get("/uploads").text
    names = re.findall(r'<h2 class="upload-name">([^<]*)</h2>', page)
    assert "gym" in names and "schoolreis" in names
    assert any("verjaardag" in n for n in names)
    assert "Vries" not in page and "Emma" not in page


def test_channels_carry_the_names_staff_know_in_their_language(school: WebSchool) -> None:
    c = school.login("carla")
    nl = c.get(f"/review/{school.qid}").text
    assert "Kanaal: Schoolgids" in nl and "Goedkeuren voor Nieuwsbrief" in nl and "Kanaal: guide" not in nl
    en = c.get(f"/review/{school.qid}", headers={"accept-language": "en"}).text
    assert "School guide" in en and "Newsletter" in en
    assert "Vastgehouden voor: Nieuwsbrief, Parro, Schoolgids" in c.get("/review").text
    uploads = school.login("anne").get("/uploads").text
    assert "<figcaption>Nieuwsbrief</figcaption>" in uploads and "<figcaption>newsletter</figcaption>" not in uploads
    # the form still posts the channel's key, not its label
    assert 'name="channel" value="newsletter"' in nl

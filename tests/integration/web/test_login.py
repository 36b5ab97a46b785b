"""The login gate: every path needs a session, cookies, CSRF on the login form and on logout,
the failed-login throttle (429), idle timeout, and sessions that end with their account."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.ledger import users
from tests.integration.web.school import PASSWORD, WebSchool, audit_rows, csrf_of, login_token, make_web_school

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def school(tmp_path: Path) -> WebSchool:
    return make_web_school(tmp_path)


def _paths(s: WebSchool) -> list[str]:
    return [
        "/",
        "/review",
        f"/review/{s.qid}",
        f"/review/{s.qid}/thumb.jpg",
        f"/review/{s.qid}/preview/newsletter.jpg",
        f"/review/{s.qid}/original",
        "/uploads",
        f"/uploads/{s.anne_sha}/newsletter",
        "/no/such/page",
        "/static/../review",
    ]


def test_without_a_session_every_page_and_image_redirects_to_login(school: WebSchool) -> None:
    c = school.client()
    for path in _paths(school):
        r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login", path
        assert not r.headers.get("content-type", "").startswith("image/"), path
    for path in (f"/review/{school.qid}/approve", f"/review/{school.qid}/reject", "/logout"):
        r = c.post(path, data={"csrf_token": "x"})
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    assert audit_rows(school, "review.approve") == [] and audit_rows(school, "review.reject") == []


def test_a_json_client_gets_401(school: WebSchool) -> None:
    r = school.client().get("/review", headers={"accept": "application/json"})
    assert r.status_code == 401
    assert r.json() == {"error": "login required"}


def test_the_login_page_and_stylesheet_are_public(school: WebSchool) -> None:
    c = school.client()
    page = c.get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text and 'name="csrf_token"' in page.text
    assert '<html lang="nl">' in page.text and "Wachtwoord" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert c.get("/static/style.css").status_code == 200


def test_login_sets_a_strict_httponly_cookie_and_audits(school: WebSchool) -> None:
    c = school.client()
    r = c.post("/login", data={"username": "carla", "password": PASSWORD, "csrf_token": login_token(c)})
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("pg_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http (a test client); see the https test
    assert c.get("/").headers["location"] == "/review"
    carla = users.get_user(school.pipe.store, "carla")
    assert carla is not None
    assert [e["detail"] for e in audit_rows(school, "web.login")] == [{"account": carla.id}]


def test_over_https_the_cookie_is_secure(school: WebSchool) -> None:
    c = school.client(base_url="https://school.example")
    r = c.post("/login", data={"username": "carla", "password": PASSWORD, "csrf_token": login_token(c)})
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("pg_session="))
    assert "Secure" in cookie


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_login_without_the_form_token_is_refused(school: WebSchool, token: str | None) -> None:
    c = school.client()
    login_token(c)  # the cookie is there, the form field is missing or wrong
    data = {"username": "carla", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    r = c.post("/login", data=data)
    assert r.status_code == 403
    assert c.get("/review").status_code == 303
    assert audit_rows(school, "web.login") == []


def test_wrong_password_and_unknown_login(school: WebSchool) -> None:
    c = school.client()
    r = c.post("/login", data={"username": "carla", "password": "wrong password", "csrf_token": login_token(c)})
    assert r.status_code == 401 and "onjuist" in r.text
    r = c.post("/login", data={"username": "nobody", "password": PASSWORD, "csrf_token": login_token(c)})
    assert r.status_code == 401
    assert c.get("/review").status_code == 303
    assert len(audit_rows(school, "web.login_failed")) == 2


def test_ten_failures_in_a_minute_give_429_per_account(school: WebSchool) -> None:
    c = school.client()
    token = login_token(c)
    for _ in range(10):
        r = c.post("/login", data={"username": "carla", "password": "wrong password", "csrf_token": token})
        assert r.status_code == 401
        token = csrf_of(r.text)  # each answer brings a fresh form token
    r = c.post("/login", data={"username": "carla", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429  # even the right password: the bucket is empty
    # the same account from another address is throttled too (per account) ...
    other = school.client(client=("192.0.2.7", 40000))
    r = other.post("/login", data={"username": "carla", "password": PASSWORD, "csrf_token": login_token(other)})
    assert r.status_code == 429
    # ... and it persists: a restarted app (same ledger) still refuses
    school.app = school.new_app(clock=school.clock)
    again = school.client(client=("192.0.2.8", 40000))
    r = again.post("/login", data={"username": "carla", "password": PASSWORD, "csrf_token": login_token(again)})
    assert r.status_code == 429
    # a minute later the bucket has refilled
    school.clock.now += 61
    school.app = school.new_app(clock=school.clock)
    assert school.login("carla").get("/review").status_code == 200


def test_ten_failures_from_one_address_give_429_for_every_account(school: WebSchool) -> None:
    c = school.client(client=("198.51.100.9", 1234))
    token = login_token(c)
    for n in range(10):
        r = c.post("/login", data={"username": f"guess{n}", "password": "x" * 12, "csrf_token": token})
        assert r.status_code == 401
        token = csrf_of(r.text)
    r = c.post("/login", data={"username": "pieter", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429
    # the throttle keeps salted hashes, never the address or the login
    keys = [str(r["key"]) for r in school.pipe.store.query("SELECT key FROM login_throttle")]
    assert keys and all(len(k) == 64 and "198.51" not in k and "guess" not in k for k in keys)
    # pieter from his own address is fine
    assert school.login("pieter", client=("203.0.113.5", 1)).get("/review").status_code == 200


def test_logout_needs_the_token_and_ends_the_session(school: WebSchool) -> None:
    c = school.login("carla")
    page = c.get("/review")
    assert c.post("/logout", data={}).status_code == 403
    assert c.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert c.get("/review").status_code == 200
    r = c.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/review").status_code == 303


def test_an_idle_session_expires(school: WebSchool) -> None:
    c = school.login("carla")
    school.clock.now += 29 * 60
    assert c.get("/review").status_code == 200  # activity restarts the idle clock
    school.clock.now += 29 * 60
    assert c.get("/review").status_code == 200
    school.clock.now += 31 * 60
    r = c.get("/review")
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_removed_account_or_new_password_ends_its_sessions(school: WebSchool) -> None:
    c = school.login("carla")
    d = school.login("pieter")
    assert main(["--root", str(school.root), "user", "remove", "carla"]) == 0
    assert c.get("/review").status_code == 303
    assert d.get("/review").status_code == 200
    users.set_password(school.pipe.store, "pieter", "scrypt$15$8$1$00$00")
    assert d.get("/review").status_code == 303


def test_language_dutch_by_default_english_on_request(school: WebSchool) -> None:
    c = school.login("carla")
    assert "Foto&#39;s die op beoordeling wachten" in c.get("/review").text
    assert "Photos waiting for review" in c.get("/review", headers={"accept-language": "en-GB,en;q=0.8"}).text
    assert c.get("/lang/en").status_code == 303
    page = c.get("/review").text
    assert '<html lang="en">' in page and "Photos waiting for review" in page

"""``/login``, ``/logout``, ``/lang/{code}`` and ``/`` (which sends each role to its page)."""

from __future__ import annotations

import re
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from photoguard.ledger import users
from photoguard.ledger.users import Role
from photoguard.web import i18n
from photoguard.web.auth import LOGIN_CSRF_COOKIE, REVIEWERS, SESSION_COOKIE, csrf_ok
from photoguard.web.base import LANG_COOKIE, checked_form, render, session_of, state
from photoguard.web.passwords import DUMMY_HASH, verify_password

MAX_FIELD = 256
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _secure(request: Request) -> bool:
    """True when the browser talks TLS to us (directly, or to the proxy uvicorn trusts)."""
    return request.url.scheme == "https"


def _login_form(request: Request, error: str = "", status: int = 200) -> Response:
    # keep the browser's token when it has one: a second GET /login (the browser following a
    # redirect for /favicon.ico, another tab) must not invalidate a form already on screen
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not _TOKEN.match(token):
        token = secrets.token_urlsafe(32)
    response = render(request, "login.html", {"login_csrf": token, "error": error}, status=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", secure=_secure(request), path="/login"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def login_page(request: Request) -> Response:
    return _login_form(request)


def _client(request: Request) -> str:
    return request.client.host if request.client else "-"


async def login_submit(request: Request) -> Response:
    web = state(request)
    lang = i18n.pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    form = await request.form()
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token")):
        return _login_form(request, i18n.word("login.expired", lang), status=403)
    login = str(form.get("username") or "")[:MAX_FIELD].strip().lower()
    password = str(form.get("password") or "")[:MAX_FIELD]
    address = _client(request)
    if not await run_in_threadpool(web.throttle.allowed, login, address):
        return _login_form(request, i18n.word("login.throttled", lang), status=429)
    user = users.get_user(web.store, login) if login else None
    ok = await run_in_threadpool(verify_password, password, user.password_hash if user else DUMMY_HASH)
    if user is None or not ok:
        await run_in_threadpool(web.throttle.failed, login, address)
        web.audit("web.login_failed", user.id if user else None)
        return _login_form(request, i18n.word("login.failed", lang), status=401)
    token = web.sessions.open(user)
    web.audit("web.login", user.id)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", httponly=True, samesite="strict")
    return response


async def logout(request: Request) -> Response:
    await checked_form(request)
    web = state(request)
    web.audit("web.logout", session_of(request).user_id)
    web.sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def set_language(request: Request) -> Response:
    code = request.path_params["code"]
    target = "/" if getattr(request.state, "session", None) else "/login"
    response = RedirectResponse(target, status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="strict", secure=_secure(request))
    return response


async def home(request: Request) -> Response:
    session = session_of(request)
    if session.role in REVIEWERS:
        return RedirectResponse("/review", status_code=303)
    if session.role is Role.TEACHER:
        return RedirectResponse("/uploads", status_code=303)
    return render(request, "home.html", {})

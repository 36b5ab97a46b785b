"""What every view shares: the app's state, rendering with the page's language and time zone,
the CSRF-checked form, and small responses."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from photoguard.config import Layout, Settings
from photoguard.ledger.audit import AuditEvent
from photoguard.ledger.db import Store
from photoguard.web import i18n
from photoguard.web.auth import Session, Sessions, Throttle, csrf_ok
from photoguard.web.previews import PreviewCache

HERE = Path(__file__).resolve().parent
LANG_COOKIE = "pg_lang"
QID = re.compile(r"^[0-9a-f]{16}$")
SHA = re.compile(r"^[0-9a-f]{64}$")

#: builds the photo pipeline for ``review approve`` (the installed command: the real models)
PipelineFactory = Callable[[Path, Settings], Any]


class CsrfRefused(Exception):
    """A POST without the session's CSRF token."""


@dataclass
class WebState:
    root: Path
    settings: Settings
    store: Store
    sessions: Sessions
    throttle: Throttle
    previews: PreviewCache
    templates: Jinja2Templates
    tz: ZoneInfo
    pipeline_factory: PipelineFactory
    _pipeline: Any = None
    _pipeline_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def layout(self) -> Layout:
        return Layout(self.root, self.settings)

    def pipeline(self) -> Any:
        """The photo pipeline, built on first use (loading the models takes a while)."""
        with self._pipeline_lock:
            if self._pipeline is None:
                self._pipeline = self.pipeline_factory(self.root, self.settings)
            return self._pipeline

    def audit(self, event: str, account: int | None, **detail: Any) -> None:
        """An audit row naming the account by id (never by login or name)."""
        sha = detail.pop("photo_sha256", None)
        channel = detail.pop("channel", None)
        self.store.audit(
            AuditEvent(
                event,
                photo_sha256=sha,
                channel=channel,
                detail={"account": account, **detail},
            )
        )


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html"], default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def session_of(request: Request) -> Session:
    s: Session = request.state.session
    return s


def language(request: Request) -> str:
    return i18n.pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    web = state(request)
    lang = language(request)
    session: Session | None = getattr(request.state, "session", None)
    flash: list[str] = []
    if session is not None:
        flash, session.flash = session.flash, []
    ctx = {
        "lang": lang,
        "t": lambda key: i18n.word(key, lang),
        "why": lambda text: i18n.reason(str(text or ""), lang),
        "channel": lambda name: i18n.channel_label(str(name), lang),
        "when": lambda iso: i18n.local_time(iso, web.tz),
        "session": session,
        "csrf": session.csrf if session else "",
        "flash": flash,
        **context,
    }
    response: HTMLResponse = web.templates.TemplateResponse(request, name, ctx, status_code=status)
    return response


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after checking its ``csrf_token`` against the session's."""
    form = await request.form()
    if not csrf_ok(session_of(request).csrf, form.get("csrf_token")):
        raise CsrfRefused()
    return form


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response

"""The Starlette application: routes, the login gate in front of every path, security headers.

Without a session every path but ``/login``, ``/lang/*`` and ``/static/*`` answers with a
redirect to ``/login`` (401 for a client that asks for JSON); no photo of any kind is served
before login. Per request the view calls :func:`photoguard.web.auth.require` with the roles it
allows (the table is in :mod:`photoguard.web.auth`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from photoguard.config import Layout, Settings
from photoguard.ledger.db import Store
from photoguard.web import i18n, views_auth, views_comms, views_privacy, views_review, views_uploads
from photoguard.web.auth import IDLE_SECONDS, SESSION_COOKIE, Forbidden, Sessions, Throttle
from photoguard.web.base import HERE, CsrfRefused, PipelineFactory, WebState, make_templates, render
from photoguard.web.previews import PreviewCache

PUBLIC_PREFIXES = ("/static/", "/lang/")
PUBLIC_PATHS = frozenset({"/login"})

_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


class LoginGate(BaseHTTPMiddleware):
    """Looks up the session for every request; no session, no page (and no photo)."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        web: WebState = request.app.state.web
        path = request.url.path
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        session = web.sessions.get(request.cookies.get(SESSION_COOKIE))
        request.state.session = session
        if session is None and not public:
            if _wants_json(request):
                response: Response = JSONResponse({"error": "login required"}, status_code=401)
            else:
                response = RedirectResponse("/login", status_code=303)
        else:
            response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


async def _forbidden(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"message_key": "error.forbidden"}, status=403)


async def _csrf(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"message_key": "error.csrf"}, status=403)


async def _http(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    key = "error.not_found" if code == 404 else "error.forbidden"
    if getattr(request.state, "session", None) is None:
        return Response(status_code=code)
    return render(request, "error.html", {"message_key": key}, status=code)


def _desk_routes() -> list[Route]:
    """Comms' channel pages and takedown list; the privacy officer's lists (each also as CSV)."""
    routes = [
        Route("/comms", views_comms.index),
        Route("/comms/takedowns", views_comms.takedowns),
        Route("/comms/takedowns.csv", views_comms.takedowns_csv),
        Route("/comms/takedowns/{tid}/done", views_comms.takedown_done, methods=["POST"]),
        Route("/comms/{channel}", views_comms.channel_page),
        Route("/comms/{channel}/thumb/{name}", views_comms.thumbnail),
        Route("/comms/{channel}/file/{name}", views_comms.download),
        Route("/comms/{channel}/zip", views_comms.zip_selection, methods=["POST"]),
        Route("/privacy", views_privacy.index),
    ]
    for name in views_privacy.LISTS:
        path = "/privacy/consents/{pupil_id}" if name == "history" else f"/privacy/{name}"
        routes.append(Route(path + ".csv", views_privacy.list_csv(name)))
        routes.append(Route(path, views_privacy.list_page(name)))
    return routes


def create_app(
    root: Path,
    settings: Settings,
    pipeline_factory: PipelineFactory,
    *,
    store: Store | None = None,
    timezone: str = i18n.DEFAULT_TIMEZONE,
    idle_seconds: float = IDLE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The web app for one school root. ``pipeline_factory`` builds the photo pipeline when a
    reviewer first approves (tests inject fakes; the ``web`` command passes the real one).
    ``clock`` (seconds) drives the idle timeout and the login throttle."""
    store = store or Store(Layout(root, settings).db)
    web = WebState(
        root=root,
        settings=settings,
        store=store,
        sessions=Sessions(store, idle_seconds=idle_seconds, clock=clock),
        throttle=Throttle(store, clock=clock),
        previews=PreviewCache(settings),
        templates=make_templates(),
        tz=ZoneInfo(timezone),
        pipeline_factory=pipeline_factory,
    )
    routes = [
        Route("/", views_auth.home),
        Route("/login", views_auth.login_page, methods=["GET"]),
        Route("/login", views_auth.login_submit, methods=["POST"]),
        Route("/logout", views_auth.logout, methods=["POST"]),
        Route("/lang/{code}", views_auth.set_language),
        Route("/review", views_review.queue),
        # review decisions (before /review/{qid}: "optional" is not an item id)
        Route("/review/optional", views_review.optional_list),
        Route("/review/optional/{sha}/{channel}.jpg", views_review.optional_image),
        Route("/review/optional/{sha}/{action}", views_review.optional_action, methods=["POST"]),
        Route("/review/{qid}/face/{n}/{action}", views_review.face_decision, methods=["POST"]),
        Route("/review/{qid}", views_review.item_page),
        Route("/review/{qid}/thumb.jpg", views_review.thumbnail),
        Route("/review/{qid}/preview/{channel}.jpg", views_review.preview),
        Route("/review/{qid}/clip/{channel}.jpg", views_review.clip_frames),
        Route("/review/{qid}/original", views_review.original),
        Route("/review/{qid}/approve", views_review.approve, methods=["POST"]),
        Route("/review/{qid}/reject", views_review.reject, methods=["POST"]),
        Route("/uploads", views_uploads.uploads),
        Route("/uploads/{sha}/{channel}", views_uploads.output),
        *_desk_routes(),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(LoginGate)],
        exception_handlers={Forbidden: _forbidden, CsrfRefused: _csrf, HTTPException: _http},
    )
    app.state.web = web
    return app

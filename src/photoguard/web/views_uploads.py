"""A teacher's uploads: every photo from their own inbox folders with its status, the reason in
plain Dutch, what each channel got, and what they can do. Never another folder's uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from photoguard.ledger import ledger, users
from photoguard.service.health import read_heartbeat, waiting_uploads
from photoguard.web.auth import TEACHERS, may_see_upload, require
from photoguard.web.base import SHA, WebState, no_store, render, session_of, state


def _rows(web: WebState, folders: tuple[str, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in users.uploads_in_folders(web.store, folders):
        sha = str(r["sha256"])
        out.append(
            {
                "sha256": sha,
                "status": str(r["status"]),
                # the file's name as the ledger keeps it (registry pupils' names taken out), so the
                # teacher knows which upload this is
                "name": str(r["stem"] or ""),
                "reason": str(r["reason"] or ""),
                "folder": str(r["uploader"]),
                "first_seen": str(r["first_seen"]),
                "channels": sorted(ledger.live_outputs(web.store, sha)),
            }
        )
    return out


def _arriving(web: WebState, folders: tuple[str, ...]) -> int:
    """Uploads in the teacher's own folders that the running service still waits on (the file
    ends early: the upload may still be going). Counts only; the heartbeat has no file names."""
    return waiting_uploads(read_heartbeat(web.layout), folders)


async def uploads(request: Request) -> Response:
    session = session_of(request)
    require(session, TEACHERS)
    web = state(request)
    rows = await run_in_threadpool(_rows, web, session.folders)
    arriving = await run_in_threadpool(_arriving, web, session.folders)
    return render(request, "uploads.html", {"rows": rows, "arriving": arriving})


def _output_file(web: WebState, sha: str, channel: str) -> Path | None:
    rel = ledger.live_outputs(web.store, sha).get(channel)
    if rel is None:
        return None
    outbox = web.layout.outbox.resolve()
    path = (web.root / rel).resolve()
    if not path.is_relative_to(outbox) or not path.is_file():
        return None
    return path


async def output(request: Request) -> Response:
    """One published file of a teacher's own upload, as the channel got it."""
    session = session_of(request)
    require(session, TEACHERS)
    web = state(request)
    sha = request.path_params["sha"]
    channel = request.path_params["channel"]
    if not SHA.match(sha) or channel not in {c.name for c in web.settings.channels}:
        raise HTTPException(404)
    row = ledger.photo(web.store, sha)
    if row is None or not may_see_upload(session, str(row["uploader"] or "")):
        raise HTTPException(404)  # another teacher's upload looks exactly like a missing one
    path = await run_in_threadpool(_output_file, web, sha, channel)
    if path is None:
        raise HTTPException(404)
    return no_store(FileResponse(path))

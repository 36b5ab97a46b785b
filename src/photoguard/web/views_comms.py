"""Comms' pages: per channel the published files (newest first, "new since your last visit"),
a thumbnail, one file or a zip of a selection to download, and the takedown list with a *done*
mark per item.

Only live outputs the ledger knows are served, and only from ``outbox/<channel>/`` (a path that
resolves elsewhere is not served); originals never. A channel or file name in a URL is looked
up, never joined into a path as given. The last visit per account and channel is kept in the
database (``web_visits``), so "new since" survives a restart and another device.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from photoguard.followup.takedown import list_takedowns
from photoguard.ledger import desk, users
from photoguard.ledger.desk import Published
from photoguard.web import i18n
from photoguard.web.auth import COMMS_DESK, COMMS_READERS, Session, require
from photoguard.web.base import WebState, checked_form, language, no_store, render, session_of, state
from photoguard.web.tables import Cell, Table, csv_response, dutch_time

#: a published file name as photoguard writes it; anything else is not looked up at all
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
THUMB_SIDE = 320
MAX_ZIP_FILES = 500
CHUNK = 256 * 1024


def _channel(web: WebState, request: Request) -> str:
    name = str(request.path_params.get("channel", ""))
    if name not in {c.name for c in web.settings.channels}:
        raise HTTPException(404)
    return name


def _file_path(web: WebState, channel: str, pub: Published) -> Path | None:
    """The file of a live output, when it lies inside ``outbox/<channel>/`` and exists."""
    folder = web.layout.channel_dir(channel).resolve()
    path = (web.root / pub.path).resolve()
    if path.parent != folder or not path.is_file():
        return None
    return path


def _lookup(web: WebState, channel: str, name: str) -> tuple[Published, Path]:
    if not SAFE_NAME.match(name) or ".." in name:
        raise HTTPException(404)
    pub = desk.channel_file(web.store, channel, name)
    path = _file_path(web, channel, pub) if pub else None
    if pub is None or path is None:
        raise HTTPException(404)
    return pub, path


# -- pages -----------------------------------------------------------------------------------
def _index_rows(web: WebState, session: Session) -> list[dict[str, object]]:
    visits = desk.last_visits(web.store, session.user_id)
    names = [c.name for c in web.settings.channels]
    new = desk.new_count_by_channel(web.store, {n: visits[n].seen_output if n in visits else 0 for n in names})
    return [
        {
            "name": n,
            "files": desk.live_count(web.store, n),
            "new": new[n],
            "visited": visits[n].at if n in visits else "",
        }
        for n in names
    ]


async def index(request: Request) -> Response:
    session = session_of(request)
    require(session, COMMS_READERS)
    web = state(request)
    rows = await run_in_threadpool(_index_rows, web, session)
    return render(request, "comms_index.html", {"rows": rows})


async def channel_page(request: Request) -> Response:
    """A channel's published files, newest first; those not shown to this account before are
    marked new. Opening the page is the visit."""
    session = session_of(request)
    require(session, COMMS_READERS)
    web = state(request)
    channel = _channel(web, request)
    files = await run_in_threadpool(desk.channel_files, web.store, channel)
    newest = max((f.id for f in files), default=0)
    previous = await run_in_threadpool(desk.visit, web.store, session.user_id, channel, newest)
    seen = previous.seen_output if previous else 0
    rows = [
        {"name": f.name, "at": f.created_at, "new": f.id > seen, "image": Path(f.name).suffix.lower() in IMAGE_SUFFIXES}
        for f in files
    ]
    return render(
        request,
        "comms_channel.html",
        {
            "name": channel,
            "rows": rows,
            "previous": previous.at if previous else None,
            "new_count": sum(1 for r in rows if r["new"]),
        },
    )


def _thumbnail(path: Path) -> bytes | None:
    try:
        with Image.open(path) as im:
            im.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
            im.thumbnail((THUMB_SIDE, THUMB_SIDE))
            rgb = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=80)
    return buf.getvalue()


async def thumbnail(request: Request) -> Response:
    """A small JPEG of a published image (made in memory, without metadata)."""
    require(session_of(request), COMMS_READERS)
    web = state(request)
    channel = _channel(web, request)
    _pub, path = await run_in_threadpool(_lookup, web, channel, str(request.path_params["name"]))
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise HTTPException(404)
    data = await run_in_threadpool(_thumbnail, path)
    if data is None:
        raise HTTPException(404)
    return no_store(Response(data, media_type="image/jpeg"))


async def download(request: Request) -> Response:
    """One published file, as the channel got it, as a download."""
    require(session_of(request), COMMS_READERS)
    web = state(request)
    channel = _channel(web, request)
    pub, path = await run_in_threadpool(_lookup, web, channel, str(request.path_params["name"]))
    return no_store(FileResponse(path, filename=pub.name, content_disposition_type="attachment"))


class _Sink:
    """A write-only stream (no seek, no tell: zipfile then writes data descriptors) that the
    response drains chunk by chunk, so a large selection is never held in memory whole."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        return len(b)

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def _zip_stream(files: list[tuple[str, Path]]) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:  # type: ignore[call-overload]
        for name, path in files:
            with path.open("rb") as src, zf.open(name, "w", force_zip64=True) as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    yield sink.drain()
        yield sink.drain()
    yield sink.drain()


async def zip_selection(request: Request) -> Response:
    """A zip of the selected published files of one channel (POST with the CSRF token). Every
    name must be a live file of the channel: one unknown name refuses the whole request."""
    require(session_of(request), COMMS_READERS)
    web = state(request)
    channel = _channel(web, request)
    form = await checked_form(request)
    names = sorted({str(n) for n in form.getlist("file")})
    if not names:
        session_of(request).flash.append(i18n.word("comms.none_selected", language(request)))
        return RedirectResponse(f"/comms/{channel}", status_code=303)
    if len(names) > MAX_ZIP_FILES:
        raise HTTPException(400)
    files = [(name, (await run_in_threadpool(_lookup, web, channel, name))[1]) for name in names]
    filename = f"{channel}-{date.today().isoformat()}.zip"
    return no_store(
        StreamingResponse(
            _zip_stream(files),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    )


# -- the takedown list -----------------------------------------------------------------------
def takedown_table(web: WebState, lang: str, *, can_mark: bool) -> Table:
    """Every takedown, newest first, with its *done* mark (who and when) or, for comms, the button."""
    marks = desk.takedown_marks(web.store)
    logins = {u.id: u.login for u in users.list_users(web.store)}
    table = Table(
        [
            "desk.at",
            "desk.channel",
            "desk.file",
            "desk.sha256",
            "desk.pupil_id",
            "desk.reason",
            "desk.replacement",
            "desk.done",
        ]
    )
    for t in reversed(list_takedowns(web.store)):
        mark = marks.get(t.id)
        if mark:
            who = logins.get(mark[1] or -1, f"#{mark[1]}")
            done: str | Cell = f"{i18n.word('desk.done', lang)} {dutch_time(mark[0], web.tz)} ({who})"
        elif can_mark:
            done = Cell("", action=f"/comms/takedowns/{t.id}/done", label=i18n.word("desk.mark_done", lang))
        else:
            done = i18n.word("desk.open", lang)
        table.rows.append(
            [
                dutch_time(t.at, web.tz),
                i18n.channel_label(t.channel, lang),
                Path(t.output_path).name,
                t.output_sha256,
                t.pupil_id,
                i18n.reason(t.reason, lang),
                Path(t.replacement_path).name if t.replacement_path else "",
                done,
            ]
        )
    return table


async def takedowns(request: Request) -> Response:
    session = session_of(request)
    require(session, COMMS_READERS)
    web = state(request)
    lang = language(request)
    table = await run_in_threadpool(takedown_table, web, lang, can_mark=session.role in COMMS_DESK)
    return render(
        request,
        "desk_list.html",
        {
            "title_key": "desk.takedowns",
            "intro_key": "desk.takedowns_intro",
            "table": table.cells(),
            "columns": table.headers(lang),
            "keys": table.columns,
            "csv_href": "/comms/takedowns.csv",
            "back_href": "/comms",
            "back_key": "comms.back",
        },
    )


async def takedowns_csv(request: Request) -> Response:
    require(session_of(request), COMMS_READERS)
    web = state(request)
    lang = language(request)
    table = await run_in_threadpool(takedown_table, web, lang, can_mark=False)
    return csv_response(table, web.settings, lang, "verwijderlijst.csv")


async def takedown_done(request: Request) -> Response:
    """Mark one takedown done (POST, CSRF; audited as ``web.takedown_done`` with the account id)."""
    session = session_of(request)
    require(session, COMMS_DESK)
    await checked_form(request)
    raw = str(request.path_params["tid"])
    if not raw.isdigit() or len(raw) > 12:
        raise HTTPException(404)
    web = state(request)
    ok = await run_in_threadpool(desk.mark_takedown_done, web.store, int(raw), session.user_id)
    session.flash.append(i18n.word("desk.marked" if ok else "done.failed", language(request)))
    return RedirectResponse("/comms/takedowns", status_code=303)

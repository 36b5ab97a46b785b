"""The review pages (comms and privacy): the queue, one held photo per channel with its faces,
approve per channel or all, reject, and the original on explicit request (audited).

Decisions go through :class:`photoguard.followup.review.Review`, exactly as
``photoguard review approve|reject`` do; the web adds an audit row naming the account.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from photoguard.followup.review import Item, Review, ReviewError
from photoguard.web import i18n
from photoguard.web.auth import ORIGINAL_VIEWERS, REVIEWERS, require
from photoguard.web.base import QID, WebState, checked_form, language, no_store, render, session_of, state
from photoguard.web.previews import PREVIEW_SIDE, THUMB_SIDE, NoPreview, face_rows

log = logging.getLogger(__name__)

_MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}


def _review(web: WebState, with_pipeline: bool = False) -> Review:
    if with_pipeline:
        pipe = web.pipeline()
        return Review(web.root, web.settings, pipe.store, pipe)
    return Review(web.root, web.settings, web.store)


def _item(web: WebState, qid: str) -> Item:
    if not QID.match(qid):
        raise HTTPException(404)
    try:
        return _review(web).get(qid)
    except ReviewError:
        raise HTTPException(404) from None


def _channel(web: WebState, name: str) -> str:
    if name not in {c.name for c in web.settings.channels}:
        raise HTTPException(404)
    return name


async def queue(request: Request) -> Response:
    require(session_of(request), REVIEWERS)
    web = state(request)
    items = await run_in_threadpool(_review(web).list)
    return render(request, "queue.html", {"items": items})


def _channel_rows(web: WebState, item: Item) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    original = _original_or_none(web, item.id)
    size = web.previews.size(item.id, original) if original is not None and item.faces else None
    for ch in web.settings.channels:
        name = ch.name
        if name in item.published:
            state_key = "item.published"
        elif item.held_channels and name not in item.held_channels:
            state_key = "item.not_held"
        else:
            state_key = ""
        rows.append(
            {
                "name": name,
                "state": state_key,
                "approvable": item.status == "held" and item.resolved_at is None and state_key == "",
                "preview": size is not None,
                "size": size or (0, 0),
                "faces": face_rows(item.faces, name, *size) if size else [],
            }
        )
    return rows


async def item_page(request: Request) -> Response:
    session = session_of(request)
    require(session, REVIEWERS)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    channels = await run_in_threadpool(_channel_rows, web, item)
    return render(
        request,
        "item.html",
        {"item": item, "channels": channels, "may_see_original": session.role in ORIGINAL_VIEWERS},
    )


def _original_or_none(web: WebState, qid: str) -> bytes | None:
    """The held original's plain bytes (decrypted: originals are encrypted at rest), or None."""
    try:
        return _review(web).original_bytes(qid)[0]
    except ReviewError:
        return None


def _preview_bytes(web: WebState, item: Item, channel: str, side: int) -> bytes:
    original = _original_or_none(web, item.id) if item.status == "held" else None
    if original is None:
        raise NoPreview("no original")
    return web.previews.render(item.id, original, item.faces, channel, side)


async def preview(request: Request) -> Response:
    require(session_of(request), REVIEWERS)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    channel = _channel(web, request.path_params["channel"])
    try:
        data = await run_in_threadpool(_preview_bytes, web, item, channel, PREVIEW_SIDE)
    except NoPreview:
        raise HTTPException(404) from None
    return no_store(Response(data, media_type="image/jpeg"))


async def thumbnail(request: Request) -> Response:
    """The queue's thumbnail: every face redacted, whatever the channel."""
    require(session_of(request), REVIEWERS)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    try:
        data = await run_in_threadpool(_preview_bytes, web, item, "", THUMB_SIDE)
    except NoPreview:
        raise HTTPException(404) from None
    return no_store(Response(data, media_type="image/jpeg"))


async def original(request: Request) -> Response:
    session = session_of(request)
    require(session, ORIGINAL_VIEWERS)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    try:
        data, suffix = await run_in_threadpool(_review(web).original_bytes, item.id)
    except ReviewError:
        raise HTTPException(404) from None
    web.audit("web.original_viewed", session.user_id, photo_sha256=item.sha256, id=item.id)
    log.info("event=original_viewed id=%s account=%s", item.id, session.user_id)
    media = _MEDIA_TYPES.get(suffix.lower(), "application/octet-stream")
    response = Response(data, media_type=media)
    disposition = "inline" if media in ("image/jpeg", "image/png", "image/webp") else "attachment"
    response.headers["Content-Disposition"] = f'{disposition}; filename="original-{item.id}{suffix.lower()}"'
    return no_store(response)


async def approve(request: Request) -> Response:
    session = session_of(request)
    require(session, REVIEWERS)
    form = await checked_form(request)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    raw = str(form.get("channel") or "")
    channel = _channel(web, raw) if raw else None
    lang = language(request)
    try:
        result = await run_in_threadpool(lambda: _review(web, with_pipeline=True).approve(item.id, channel))
    except ReviewError as exc:
        web.audit("web.approve_failed", session.user_id, photo_sha256=item.sha256, id=item.id, channel=channel)
        session.flash.append(f"{i18n.word('done.failed', lang)}: {exc}")
        return RedirectResponse(f"/review/{item.id}", status_code=303)
    web.previews.forget(item.id)
    outcome = result.status.value
    web.audit(
        "web.approve",
        session.user_id,
        photo_sha256=item.sha256,
        channel=channel,
        id=item.id,
        published=sorted(result.outputs),
        outcome=outcome,
    )
    done = ", ".join(sorted(result.outputs)) or "-"
    session.flash.append(f"{i18n.word('done.approved', lang)}: {done} ({i18n.word('status.' + outcome, lang)})")
    if outcome == "held":
        return RedirectResponse(f"/review/{item.id}", status_code=303)
    return RedirectResponse("/review", status_code=303)


async def reject(request: Request) -> Response:
    session = session_of(request)
    require(session, REVIEWERS)
    await checked_form(request)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    lang = language(request)
    try:
        await run_in_threadpool(_review(web).reject, item.id)
    except ReviewError as exc:
        session.flash.append(f"{i18n.word('done.failed', lang)}: {exc}")
        return RedirectResponse(f"/review/{item.id}", status_code=303)
    web.previews.forget(item.id)
    web.audit("web.reject", session.user_id, photo_sha256=item.sha256, id=item.id)
    session.flash.append(i18n.word("done.rejected", lang))
    return RedirectResponse("/review", status_code=303)

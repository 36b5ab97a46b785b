"""The review pages (comms and privacy): the queue, one held photo per channel with its faces,
per face the reviewer's decision (the near-matched pupil confirmed or not, "not a face"),
approve per channel or all, reject, and the original on explicit request (audited); and the
optional list of published photos where a consenting pupil was redacted but could be shown.

Decisions go through :class:`photoguard.followup.review.Review` and
:class:`photoguard.followup.optional.OptionalReview`, exactly as the ``photoguard review``
commands do; the web adds an audit row naming the account. Candidate pupils are shown by first
name and group only (never a surname); the audit and the log get ids only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from photoguard.core.overrides import OverrideKind
from photoguard.core.records import Box
from photoguard.followup.optional import OptionalReview
from photoguard.followup.review import Item, Review, ReviewError, clip_preview_frames
from photoguard.photo.formats import sniff_video
from photoguard.web import i18n
from photoguard.web.auth import ORIGINAL_VIEWERS, REVIEWERS, Session, require
from photoguard.web.base import (
    QID,
    SHA,
    WebState,
    checked_form,
    language,
    no_store,
    render,
    session_of,
    state,
)
from photoguard.web.previews import PREVIEW_SIDE, THUMB_SIDE, NoPreview, clip_sheet, face_rows

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


def _channel_rows(web: WebState, item: Item, original: bytes | None, clip: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    size = web.previews.size(item.id, original) if original is not None and item.faces and not clip else None
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
                # a held clip: its frames as this channel would get them (only where it is held)
                "clip": clip and bool(item.faces) and item.status == "held" and state_key == "",
                "size": size or (0, 0),
                "faces": face_rows(item.faces, name, *size) if size else [],
            }
        )
    return rows


def _face_cards(web: WebState, item: Item, clip: bool) -> list[dict[str, Any]]:
    """Per face: what was found, the candidate pupil (first name and group only) and which
    decisions the reviewer can take."""
    pupils = _review(web).candidates(item)
    # a clip's faces are tracks: approve or reject it as a whole
    open_item = item.status == "held" and item.resolved_at is None and not clip
    cards: list[dict[str, Any]] = []
    for n, f in enumerate(item.faces, 1):
        pid = str(f.get("candidate") or "")
        pupil = pupils.get(pid)
        reviewed = str(f.get("reviewed") or "")
        match = str(f.get("match") or "")
        cards.append(
            {
                "n": n,
                "match": match,
                "reviewed": reviewed,
                "pupil_id": pid,
                "first_name": pupil.first_name if pupil else "",
                "group": pupil.group if pupil else "",
                "decision": f.get("decision") or {},
                "may_confirm": open_item and bool(pid) and reviewed != "confirm",
                "may_reject": open_item and bool(pid) and reviewed != "stranger",
                "may_not_face": open_item and not pid and match in ("none", "too_small") and reviewed != "not_a_face",
            }
        )
    return cards


async def item_page(request: Request) -> Response:
    session = session_of(request)
    require(session, REVIEWERS)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    # the original is decrypted once per page: its size for the overlays, and whether it is a clip
    original = await run_in_threadpool(_original_or_none, web, item.id)
    is_clip = original is not None and sniff_video(original) is not None
    channels = await run_in_threadpool(_channel_rows, web, item, original, is_clip)
    cards = await run_in_threadpool(_face_cards, web, item, is_clip)
    return render(
        request,
        "item.html",
        {
            "item": item,
            "channels": channels,
            "cards": cards,
            "is_clip": is_clip,
            "may_see_original": session.role in ORIGINAL_VIEWERS,
        },
    )


_FACE_ACTIONS = {
    "confirm": OverrideKind.CONFIRM,
    "reject-match": OverrideKind.STRANGER,
    "not-a-face": OverrideKind.NOT_A_FACE,
}


async def face_decision(request: Request) -> Response:
    """POST /review/{qid}/face/{n}/{action}: confirm, reject-match or not-a-face (CSRF checked)."""
    session, form, web, item = await _reviewer_post(request)
    kind = _FACE_ACTIONS.get(request.path_params["action"])
    raw_n = str(request.path_params["n"])
    if kind is None or not raw_n.isdigit() or len(raw_n) > 4:
        raise HTTPException(404)
    pupil = str(form.get("pupil_id") or "") or None
    learn = form.get("learn") == "1"
    lang = language(request)
    rv = _review(web, with_pipeline=learn)
    try:
        await run_in_threadpool(
            lambda: rv.decide(item.id, int(raw_n), kind, pupil, account=session.user_id, learn=learn)
        )
    except ReviewError as exc:
        session.flash.append(f"{i18n.word('done.failed', lang)}: {exc}")
        return RedirectResponse(f"/review/{item.id}", status_code=303)
    web.previews.forget(item.id)
    log.info("event=face_decision id=%s face=%s kind=%s account=%s", item.id, raw_n, kind.value, session.user_id)
    session.flash.append(i18n.word("face.done." + kind.value, lang))
    return RedirectResponse(f"/review/{item.id}#face-{raw_n}", status_code=303)


# -- optional work: published photos where a consenting pupil was redacted --------------------
def _optional_rows(web: WebState) -> list[dict[str, Any]]:
    from photoguard.ledger.consent import Registry

    opt = OptionalReview(web.root, web.settings, web.store)
    photos = opt.photos()
    ids = sorted({f.pupil_id for p in photos for f in p.faces})
    pupils = Registry(web.store).pupils(ids) if ids else {}
    order = [c.name for c in web.settings.channels]
    rows: list[dict[str, Any]] = []
    for p in photos:
        faces = []
        for f in p.faces:
            pupil = pupils.get(f.pupil_id)
            channels = [c for c in order if c in f.channels]
            faces.append(
                {
                    "box": ",".join(str(v) for v in f.box.to_list()),
                    "xywh": (f.box.x1, f.box.y1, f.box.width, f.box.height),
                    "pupil_id": f.pupil_id,
                    "first_name": pupil.first_name if pupil else "",
                    "group": pupil.group if pupil else "",
                    "channels": channels,
                }
            )
        size = _vault_size(web, opt, p.sha256) if p.vaulted else None
        rows.append(
            {
                "size": size,
                "sha256": p.sha256,
                "created_at": p.created_at,
                "vaulted": p.vaulted,
                "channel": faces[0]["channels"][0] if faces[0]["channels"] else p.faces[0].channels[0],
                "faces": faces,
            }
        )
    return rows


def _vault_size(web: WebState, opt: OptionalReview, sha: str) -> tuple[int, int] | None:
    """The upright original's size (from the vault copy, cached), so the faces can be outlined on
    the published picture; None when it cannot be read."""
    try:
        data = opt.vault_bytes(sha)
    except ReviewError:
        return None
    return web.previews.size("vault:" + sha, data)


async def optional_list(request: Request) -> Response:
    require(session_of(request), REVIEWERS)
    web = state(request)
    rows = await run_in_threadpool(_optional_rows, web)
    return render(request, "optional.html", {"rows": rows})


async def optional_image(request: Request) -> Response:
    """The photo as a channel published it (already anonymised), for the optional list."""
    from photoguard.web.views_uploads import _output_file

    require(session_of(request), REVIEWERS)
    web = state(request)
    sha = request.path_params["sha"]
    if not SHA.match(sha):
        raise HTTPException(404)
    channel = _channel(web, request.path_params["channel"])
    path = await run_in_threadpool(_output_file, web, sha, channel)
    if path is None:
        raise HTTPException(404)
    return no_store(Response(path.read_bytes(), media_type="image/png" if path.suffix == ".png" else "image/jpeg"))


def _form_box(raw: object) -> Box:
    parts = str(raw or "").split(",")
    if len(parts) != 4:
        raise HTTPException(400)
    try:
        return Box(*(float(int(p)) for p in parts))
    except ValueError:
        raise HTTPException(400) from None


async def optional_action(request: Request) -> Response:
    """POST /review/optional/{sha}/{action}: confirm (render again and publish) or dismiss."""
    session = session_of(request)
    require(session, REVIEWERS)
    form = await checked_form(request)
    web = state(request)
    sha, action = request.path_params["sha"], request.path_params["action"]
    if not SHA.match(sha) or action not in ("confirm", "dismiss"):
        raise HTTPException(404)
    box, pupil = _form_box(form.get("box")), str(form.get("pupil_id") or "")
    lang = language(request)
    try:
        if action == "confirm":
            opt = OptionalReview(web.root, web.settings, web.store, web.pipeline())
            outputs = await run_in_threadpool(lambda: opt.confirm(sha, box, pupil, account=session.user_id))
            done = ", ".join(i18n.channel_label(c, lang) for c in sorted(outputs)) or "-"
            session.flash.append(f"{i18n.word('optional.done.confirm', lang)}: {done}")
        else:
            opt = OptionalReview(web.root, web.settings, web.store)
            await run_in_threadpool(lambda: opt.dismiss(sha, box, pupil, account=session.user_id))
            session.flash.append(i18n.word("optional.done.dismiss", lang))
    except ReviewError as exc:
        session.flash.append(f"{i18n.word('done.failed', lang)}: {exc}")
    log.info("event=optional_%s photo=%s account=%s", action, sha[:12], session.user_id)
    return RedirectResponse("/review/optional", status_code=303)


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
    if sniff_video(original) is not None:
        return _clip_bytes(web, item, channel, side, count=1)
    return web.previews.render(item.id, original, item.faces, channel, side)


def _clip_bytes(web: WebState, item: Item, channel: str, side: int, count: int) -> bytes:
    """A held clip's frames for ``channel`` on one sheet (:func:`clip_preview_frames`: spread
    over the clip, redacted as the channel would get them, faces outlined)."""
    if item.status != "held" or not item.faces:
        raise NoPreview("no decisions")

    def make() -> bytes:
        rv = _review(web, with_pipeline=True)
        tile = side if count == 1 else side // 2
        try:
            frames = clip_preview_frames(rv, item.id, channel, count=count, side=tile)
        except ReviewError as exc:
            raise NoPreview(str(exc)) from None
        return clip_sheet(frames, side)

    return web.previews.clip(item.id, item.faces, f"{channel}/{count}", side, make)


async def _jpeg(request: Request, make: Callable[[WebState, Item], bytes]) -> Response:
    """A reviewer's picture of a held item, made by ``make`` in a worker thread; 404 when there
    is no safe one (:class:`NoPreview`)."""
    require(session_of(request), REVIEWERS)
    web = state(request)
    item = _item(web, request.path_params["qid"])
    try:
        data = await run_in_threadpool(make, web, item)
    except NoPreview:
        raise HTTPException(404) from None
    return no_store(Response(data, media_type="image/jpeg"))


async def clip_frames(request: Request) -> Response:
    """``/review/ID/clip/CHANNEL.jpg``: four frames of a held clip as the channel would get them."""
    name = request.path_params["channel"]
    return await _jpeg(request, lambda web, item: _clip_bytes(web, item, _channel(web, name), PREVIEW_SIDE, 4))


async def preview(request: Request) -> Response:
    name = request.path_params["channel"]
    return await _jpeg(request, lambda web, item: _preview_bytes(web, item, _channel(web, name), PREVIEW_SIDE))


async def thumbnail(request: Request) -> Response:
    """The queue's thumbnail: every face redacted, whatever the channel."""
    return await _jpeg(request, lambda web, item: _preview_bytes(web, item, "", THUMB_SIDE))


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


async def _reviewer_post(request: Request) -> tuple[Session, FormData, WebState, Item]:
    """A reviewer's POST about one held item: role, CSRF token and item checked, in that order."""
    session = session_of(request)
    require(session, REVIEWERS)
    form = await checked_form(request)
    web = state(request)
    return session, form, web, _item(web, request.path_params["qid"])


async def approve(request: Request) -> Response:
    session, form, web, item = await _reviewer_post(request)
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
    if getattr(result, "kept", False):  # a channel folder could not take a file (disk full, read-only)
        web.audit("web.approve_failed", session.user_id, photo_sha256=item.sha256, id=item.id, channel=channel)
        session.flash.append(f"{i18n.word('done.not_published', lang)}: {i18n.reason(result.reason, lang)}")
        return RedirectResponse(f"/review/{item.id}", status_code=303)
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
    order = [c.name for c in web.settings.channels]
    done = ", ".join(i18n.channel_label(c, lang) for c in order if c in result.outputs) or "-"
    session.flash.append(f"{i18n.word('done.approved', lang)}: {done} ({i18n.word('status.' + outcome, lang)})")
    if outcome == "held":
        return RedirectResponse(f"/review/{item.id}", status_code=303)
    return RedirectResponse("/review", status_code=303)


async def reject(request: Request) -> Response:
    session, _form, web, item = await _reviewer_post(request)
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

"""``photoguard review list|show|approve|reject``: the photos held for a person's decision; per face
``review confirm|reject-match|not-a-face`` (kept until the photo is approved or rejected)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photoguard.cli.exitcodes import EXIT_FAIL, EXIT_OK

if TYPE_CHECKING:
    from photoguard.cli.app import Context, SubParsers


def add_review(sub: SubParsers) -> None:
    review = sub.add_parser("review", help="held photos: list, show, approve, reject")
    rsub = review.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    p = rsub.add_parser("list", help="held and rejected photos waiting for a decision")
    p.add_argument("--all", action="store_true", help="include resolved items")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_review_list)
    p = rsub.add_parser("show", help="reasons, faces and what each channel would get")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--export", metavar="FILE", help="also write the held original, decrypted, to the new FILE (mode 0600)"
    )
    p.add_argument(
        "--frames",
        metavar="DIR",
        help="a held clip: write a few of its frames per held channel, redacted as that channel would get them "
        "and faces outlined, as JPEGs into the new folder DIR (mode 0700)",
    )
    p.set_defaults(func=cmd_review_show)
    p = rsub.add_parser("approve", help="publish the held channels (uncertain faces redacted)")
    p.add_argument("id")
    p.add_argument("--channel", help="approve only this channel")
    p.set_defaults(func=cmd_review_approve)
    p = rsub.add_parser("reject", help="delete the held original (recorded in the deletion log)")
    p.add_argument("id")
    p.set_defaults(func=cmd_review_reject)
    p = rsub.add_parser(
        "confirm", help="face FACE is the candidate pupil PUPIL_ID: visible where that pupil has consent"
    )
    p.add_argument("id")
    p.add_argument("face", type=int, help="face number as 'review show' lists it")
    p.add_argument("pupil_id", help="the face's candidate pupil (id)")
    p.add_argument(
        "--learn",
        action="store_true",
        help="also keep this face as a template of the pupil (only with face_matching consent)",
    )
    p.set_defaults(func=cmd_review_face, kind="confirm")
    p = rsub.add_parser("reject-match", help="face FACE is not its candidate pupil: redacted everywhere")
    p.add_argument("id")
    p.add_argument("face", type=int, help="face number as 'review show' lists it")
    p.set_defaults(func=cmd_review_face, kind="stranger")
    p = rsub.add_parser("not-a-face", help="face FACE (matched nobody) is not a face: no fill there")
    p.add_argument("id")
    p.add_argument("face", type=int, help="face number as 'review show' lists it")
    p.set_defaults(func=cmd_review_face, kind="not_a_face")


def _review(ctx: Context, with_pipeline: bool = False) -> Any:
    from photoguard.followup.review import Review
    from photoguard.ledger.db import Store

    if with_pipeline:
        pipe, _fake = ctx.service_pipeline()
        return Review(ctx.root, ctx.settings, pipe.store, pipe)
    return Review(ctx.root, ctx.settings, Store(ctx.layout.db))


def _style(ctx: Context) -> Any:
    from photoguard.core.textsafe import OutputStyle

    return OutputStyle.from_settings(ctx.settings.locale)


def cmd_review_list(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.core.textsafe import terminal_text as safe

    items = _review(ctx).list(include_resolved=args.all)
    if args.json:
        print(json.dumps([i.to_json() for i in items], indent=1))
        return EXIT_OK
    if not items:
        print("nothing held for review")
        return EXIT_OK
    style = _style(ctx)
    for i in items:
        held = safe(",".join(i.held_channels) or "all")
        print(f"{safe(i.id)}  {safe(i.status):9} {style.time(i.created_at)}  channels: {held}  {safe(i.reason)}")
    print(f"{len(items)} item(s); see: photoguard review show ID")
    return EXIT_OK


def cmd_review_show(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.review import ReviewError

    rv = _review(ctx)
    try:
        item = rv.get(args.id)
    except ReviewError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    preview = rv.channel_preview(item)
    if args.export:
        try:
            rv.export_original(item.id, Path(args.export))
        except ReviewError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_FAIL
    if args.json:
        print(json.dumps({**item.to_json(), "channels": preview}, indent=1))
        return EXIT_OK
    from photoguard.core.textsafe import terminal_text as safe

    style = _style(ctx)
    print(f"item {safe(item.id)} ({safe(item.status)}, since {style.time(item.created_at)} {style.timezone})")
    print(f"  reason: {safe(item.reason)}")
    print(f"  photo sha256: {safe(item.sha256)}")
    original = rv.original_path(item.id)
    print(f"  original: {safe(original) if original else '(missing)'}")
    if original is not None and original.name.endswith(".enc"):
        print(f"  (encrypted at rest; to look at it: photoguard review show {safe(item.id)} --export FILE)")
    print(f"  faces: {len(item.faces)}")
    for n, f in enumerate(item.faces, 1):
        who = safe(f.get("pupil_id") or "-")
        decisions = safe(", ".join(f"{ch}={a}" for ch, a in (f.get("decision") or {}).items()))
        extra = f" candidate={safe(f['candidate'])}" if f.get("candidate") else ""
        if f.get("reviewed"):
            extra += f" reviewed={safe(f['reviewed'])}"
        if f.get("not_a_face"):
            decisions = "not a face (no fill)"
        print(f"    {n}. box {safe(f.get('box'))} match={safe(f.get('match'))} pupil={who}{extra}: {decisions}")
    print("  channels:")
    for ch, line in preview.items():
        print(f"    {safe(ch):12} {safe(line)}")
    if args.frames:
        return _write_clip_frames(ctx, item, Path(args.frames))
    if original is not None and original.name.split(".")[1:2] in (["mp4"], ["mov"], ["m4v"], ["webm"]):
        print(f"  clip: its frames for review with: photoguard review show {safe(item.id)} --frames DIR")
    return EXIT_OK


def _write_clip_frames(ctx: Context, item: Any, target: Path) -> int:
    """``review show --frames DIR``: the held clip's preview frames per held channel."""
    from photoguard.core.textsafe import terminal_text as safe
    from photoguard.followup.review import ReviewError, clip_preview_frames

    rv = _review(ctx, with_pipeline=True)
    try:
        target.mkdir(mode=0o700)
    except OSError as exc:
        print(f"cannot make the folder {safe(target)}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAIL
    channels = item.held_channels or [c.name for c in ctx.settings.channels]
    written = 0
    for ch in channels:
        try:
            frames = clip_preview_frames(rv, item.id, ch)
        except ReviewError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_FAIL
        for n, f in enumerate(frames, 1):
            path = target / f"{ch}_{n}.jpg"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(f.jpeg)
            written += 1
            print(f"  frame {ch} {n}: {f.seconds:.1f} s, {f.faces} face(s) outlined -> {safe(path)}")
    if not written:
        print("  no frames: the item is not a held clip with recorded faces")
    return EXIT_OK


def cmd_review_approve(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.review import ReviewError

    try:
        res = _review(ctx, with_pipeline=True).approve(args.id, args.channel)
    except ReviewError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    from photoguard.core.textsafe import terminal_text as safe

    if getattr(res, "kept", False):  # a folder could not take a file (disk full, read-only)
        print(f"item {safe(args.id)}: the approval could not be published: {safe(res.reason)}", file=sys.stderr)
        return EXIT_FAIL
    for ch, path in sorted(res.outputs.items()):
        print(f"published {ch}: {safe(path)}")
    if res.held_channels:
        print(f"still held: {', '.join(res.held_channels)} ({safe(res.reason)})")
    print(f"item {safe(args.id)}: {res.status.value}")
    return EXIT_OK if res.status.value in ("published", "held") else EXIT_FAIL


def cmd_review_reject(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.followup.review import ReviewError

    try:
        _review(ctx).reject(args.id)
    except ReviewError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    print(f"item {args.id}: original deleted (recorded in the deletion log)")
    return EXIT_OK


def cmd_review_face(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.core.overrides import OverrideKind
    from photoguard.followup.review import ReviewError

    kind = OverrideKind(args.kind)
    learn = bool(getattr(args, "learn", False))
    rv = _review(ctx, with_pipeline=learn)
    try:
        decision = rv.decide(args.id, args.face, kind, getattr(args, "pupil_id", None), learn=learn)
    except ReviewError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAIL
    what = {
        OverrideKind.CONFIRM: f"confirmed as pupil {decision.pupil_id}",
        OverrideKind.STRANGER: "not the candidate pupil: redacted",
        OverrideKind.NOT_A_FACE: "not a face: no fill on approval",
    }[kind]
    print(f"item {args.id} face {args.face}: {what}; approve to publish (photoguard review approve {args.id})")
    return EXIT_OK

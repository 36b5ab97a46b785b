"""``photoguard web [--listen HOST:PORT]``: the school's web app (review, teachers' uploads).

Listens on 127.0.0.1:8080 by default; a school puts it behind its reverse proxy for TLS
(docs/WEB.md). The line ``listening on http://HOST:PORT`` on standard output names the real port
(``--listen 127.0.0.1:0`` picks a free one). SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING

from photoguard.cli.exitcodes import EXIT_FAIL, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from photoguard.cli.app import Context, SubParsers
    from photoguard.config import Settings

log = logging.getLogger(__name__)
DEFAULT_LISTEN = "127.0.0.1:8080"


def add_web(sub: SubParsers) -> None:
    p = sub.add_parser("web", help="the web app: review queue and teachers' uploads (docs/WEB.md)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}")
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="address of the reverse proxy whose X-Forwarded-* headers count (default: 127.0.0.1)",
    )
    p.add_argument(
        "--timezone", default=None, help="times on the pages (default: [locale] timezone in photoguard.toml)"
    )
    p.set_defaults(func=cmd_web)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:8080``) -> (host, port); raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    ipaddress.ip_address(host)
    value = int(port)
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} out of range")
    return host, value


def page_zone(option: str | None, settings: Settings) -> str:
    """The time zone of the pages: ``--timezone`` when given, else the school's ``[locale]``."""
    return option or settings.locale.timezone


def cmd_web(args: argparse.Namespace, ctx: Context) -> int:
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        import uvicorn

        from photoguard.web.app import create_app
    except ImportError as exc:  # pragma: no cover - a broken install
        print(f"the web app needs starlette, jinja2 and uvicorn: {exc}", file=sys.stderr)
        return EXIT_FAIL
    from zoneinfo import ZoneInfoNotFoundError

    def pipeline_factory(root: object, settings: object) -> object:
        pipe, _fake = ctx.service_pipeline()
        return pipe

    zone = page_zone(args.timezone, ctx.settings)
    try:
        app = create_app(ctx.root, ctx.settings, pipeline_factory, timezone=zone)
    except ZoneInfoNotFoundError:
        print(f"--timezone: unknown time zone {zone!r}", file=sys.stderr)
        return EXIT_USAGE
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr)
        sock.close()
        return EXIT_FAIL
    sock.listen(128)  # before the line below: a client that reads it may connect at once
    config = uvicorn.Config(
        app,
        proxy_headers=True,
        forwarded_allow_ips=",".join(args.trusted_proxy or ["127.0.0.1"]),
        access_log=False,  # client addresses are personal data; the audit trail says who did what
        log_level="warning",
        server_header=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)

    def stop(_sig: int, _frame: object) -> None:
        server.should_exit = True

    # uvicorn handles SIGTERM while it runs and re-raises it after its graceful shutdown; this
    # handler turns that into a normal return (exit 0) and also stops a server not yet started
    signal.signal(signal.SIGTERM, stop)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
    print(f"listening on http://{shown}:{bound[1]}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_OK

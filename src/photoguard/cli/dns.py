"""``photoguard dns serve|check|stats|reload``: the command side of the school network's DNS filter
(the filter itself lives in :mod:`photoguard.dnsfilter`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from photoguard.cli.exitcodes import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from photoguard.dnsfilter.config import DnsConfig, parse_hostport

if TYPE_CHECKING:
    from photoguard.cli.app import SubParsers

log = logging.getLogger(__name__)


def _list_spec(value: str) -> tuple[str, str]:
    cat, sep, path = value.partition("=")
    if not sep or not cat or not path:
        raise argparse.ArgumentTypeError(f"expected CATEGORY=FILE, got {value!r}")
    return cat.strip().lower(), path


def _add_list_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--list",
        dest="lists",
        action="append",
        type=_list_spec,
        metavar="CATEGORY=FILE",
        help="block list file for a category (repeatable; replaces the config's lists)",
    )
    p.add_argument(
        "--allow",
        action="append",
        metavar="FILE",
        help="allowlist file (repeatable; replaces the config's allowlists)",
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def add_dns(sub: SubParsers) -> None:
    """Add the ``dns`` command group to the main parser."""
    p = sub.add_parser("dns", help="school network DNS filter")
    dsub = p.add_subparsers(dest="dns_command", metavar="{serve,check,stats,reload}")
    p.set_defaults(func=lambda args, ctx: _usage(p), needs_config=False)

    s = dsub.add_parser("serve", help="run the filtering DNS forwarder")
    s.add_argument("--listen", action="append", metavar="IP:PORT", help="listen address (repeatable)")
    s.add_argument("--upstream", action="append", metavar="IP:PORT", help="upstream resolver (repeatable)")
    _add_list_options(s)
    s.add_argument(
        "--allow-network",
        action="append",
        metavar="CIDR",
        help="allowed client network (repeatable)",
    )
    s.add_argument("--block-mode", choices=["nxdomain", "null_ip"], help="blocked answer style")
    s.add_argument("--stats-listen", metavar="IP:PORT", help="loopback stats/metrics address")
    s.add_argument("--no-stats", action="store_true", help="no stats HTTP endpoint")
    s.add_argument("--query-log", choices=["off", "blocked", "all"], help="query log mode")
    s.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio loop")
    s.set_defaults(func=cmd_serve)

    c = dsub.add_parser("check", help="explain the verdict for a name")
    c.add_argument("name", help="domain name to check")
    c.add_argument("--client", default="127.0.0.1", help="client address (selects the group)")
    _add_list_options(c)
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_check)

    st = dsub.add_parser("stats", help="counters of the running filter")
    st.add_argument("--stats-listen", metavar="IP:PORT", help="stats endpoint (default: config)")
    st.add_argument("--prometheus", action="store_true", help="print the Prometheus text")
    st.add_argument("--json", action="store_true", help="print raw JSON")
    st.set_defaults(func=cmd_stats)

    r = dsub.add_parser("reload", help="reload the lists of the running filter")
    r.add_argument("--stats-listen", metavar="IP:PORT", help="stats endpoint (default: config)")
    r.set_defaults(func=cmd_reload)


def effective_config(args: argparse.Namespace, base: DnsConfig) -> DnsConfig:
    """The config file's ``[dns]`` section with command-line options applied on top."""
    data: dict[str, Any] = base.model_dump()
    if getattr(args, "listen", None):
        data["listen"] = list(args.listen)
    if getattr(args, "upstream", None):
        data["upstreams"] = list(args.upstream)
    if getattr(args, "lists", None):
        data["lists"] = [{"category": c, "path": str(Path(f).resolve())} for c, f in args.lists]
    if getattr(args, "allow", None):
        data["allowlists"] = [str(Path(f).resolve()) for f in args.allow]
    if getattr(args, "allow_network", None):
        data["allowed_networks"] = list(args.allow_network)
    if getattr(args, "block_mode", None):
        data["block_mode"] = args.block_mode
    if getattr(args, "stats_listen", None):
        data["stats_listen"] = args.stats_listen
    if getattr(args, "no_stats", False):
        data["stats_listen"] = ""
    if getattr(args, "query_log", None):
        data["query_log"]["mode"] = args.query_log
    if getattr(args, "no_uvloop", False):
        data["use_uvloop"] = False
    return DnsConfig.model_validate(data)


def _config(args: argparse.Namespace, ctx: Any) -> DnsConfig | None:
    try:
        return effective_config(args, ctx.settings_or_default().dns)
    except ValidationError as e:
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            print(f"dns.{loc}: {err['msg']}", file=sys.stderr)
        return None


def cmd_serve(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.dnsfilter.server import ListPaths, run_server

    cfg = _config(args, ctx)
    if cfg is None:
        return EXIT_USAGE
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = Path(ctx.root)
    paths = ListPaths.from_config(cfg, root)
    missing = [str(p) for p in paths.all_paths() if not p.is_file()]
    if missing:
        print(f"list files not found: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    qdir = Path(cfg.query_log.directory)
    try:
        return run_server(cfg, paths, qdir if qdir.is_absolute() else root / qdir)
    except OSError as e:
        print(f"cannot start the DNS filter: {e}", file=sys.stderr)
        return EXIT_FAIL


def cmd_check(args: argparse.Namespace, ctx: Any) -> int:
    from photoguard.dnsfilter.control import explain_for_check

    cfg = _config(args, ctx)
    if cfg is None:
        return EXIT_USAGE
    res = explain_for_check(cfg, Path(ctx.root), args.name, args.client, local=bool(args.lists or args.allow))
    if res is None:
        return EXIT_USAGE
    if args.json:
        print(json.dumps(res, indent=2))
        return EXIT_OK
    print(f"{res['name']}: {res['verdict'].upper()} ({res['reason']})")
    if "group" in res:
        cats = ", ".join(res["group_categories"]) or "none"
        print(f"  client {res['client']} -> group {res['group']} (blocks: {cats})")
    if res.get("rewrite"):
        print(f"  SafeSearch: answered as CNAME {res['rewrite']}")
    for r in res.get("rules", []):
        on = "" if r["enabled_for_group"] else " [category off for this group]"
        print(f"  listed: {r['category']} {r['file']}:{r['line']}: {r['rule']}{on}")
    for r in res.get("allow_rules", []):
        print(f"  allowlisted: {r['file']}:{r['line']}: {r['rule']}")
    for n in res.get("group_allow", []):
        print(f"  allowlisted for the group: {n}")
    if res["verdict"] == "blocked":
        print(f"  answer: {'NXDOMAIN' if res['block_mode'] == 'nxdomain' else '0.0.0.0 / ::'}")
    return EXIT_OK


def _endpoint(args: argparse.Namespace, ctx: Any) -> str | None:
    spec = args.stats_listen
    if not spec:
        try:
            spec = ctx.settings_or_default().dns.stats_listen
        except Exception as e:  # a broken config file: say so
            print(f"cannot read config: {e}", file=sys.stderr)
            return None
    if not spec:
        print("the stats endpoint is disabled (dns.stats_listen = '')", file=sys.stderr)
        return None
    host, port = parse_hostport(spec, 9153)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _http(url: str, method: str = "GET") -> bytes | None:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bytes(resp.read())
    except (urllib.error.URLError, OSError) as e:
        print(f"no DNS filter answering at {url}: {e}", file=sys.stderr)
        return None


#: the label column of ``dns stats`` is at least this wide (wider when a label needs it)
STATS_LABEL_WIDTH = 18


def cmd_stats(args: argparse.Namespace, ctx: Any) -> int:
    base = _endpoint(args, ctx)
    if base is None:
        return EXIT_USAGE
    if args.prometheus:
        body = _http(base + "/metrics")
        if body is None:
            return EXIT_FAIL
        sys.stdout.write(body.decode())
        return EXIT_OK
    body = _http(base + "/stats")
    if body is None:
        return EXIT_FAIL
    d = json.loads(body)
    if args.json:
        print(json.dumps(d, indent=2))
        return EXIT_OK
    sys.stdout.write(format_stats(d))
    return EXIT_OK


def format_stats(d: dict[str, Any]) -> str:
    """The ``/stats`` document as a two-column table: every value starts in the same column,
    however long a category, special-answer kind or upstream address is."""
    q = d["queries"] or 1
    rows: list[tuple[str, str]] = [
        ("uptime", f"{d['uptime_seconds']:.0f} s"),
        ("queries", f"{d['queries']} (tcp {d['queries_tcp']}, refused {d['refused']})"),
        ("blocked", f"{d['blocked_total']} ({100 * d['blocked_total'] / q:.1f}%)"),
    ]
    rows += [(f"  {cat}", str(n)) for cat, n in sorted(d["blocked"].items(), key=lambda kv: -kv[1])]
    rows += [(f"  {kind}", str(n)) for kind, n in sorted(d["special"].items())]
    rows += [
        ("cache hits", f"{d['cache_hits']} ({d['cache_entries']} entries)"),
        ("forwarded", str(d["forwarded"])),
        ("upstream errors", f"{d['upstream_errors']} (timeouts {d['upstream_timeouts']})"),
        ("list names", f"{d['list_names']} (loaded in {d['list_load_seconds']} s)"),
        # what hostile clients did, and what the filter did about it (issue 17)
        ("malformed", f"{d.get('malformed', 0)} (answered FORMERR, not forwarded)"),
        (
            "tcp closed",
            f"deadline {d.get('tcp_deadline_closed', 0)}, idle {d.get('tcp_idle_closed', 0)}, "
            f"per-client cap {d.get('tcp_refused', 0)}, total cap {d.get('tcp_evicted', 0)}",
        ),
        (
            "query log",
            f"{d.get('query_log_suppressed', 0)} lines over the rate cap, "
            f"{d.get('query_log_rotations', 0)} rotations",
        ),
    ]
    addr_width = max((len(u["upstream"]) for u in d["upstreams"]), default=0)
    rows += [("upstream", f"{u['upstream']:<{addr_width}}  {'DOWN' if u['down'] else 'up'}") for u in d["upstreams"]]
    width = max(STATS_LABEL_WIDTH, *(len(label) + 2 for label, _ in rows))
    return "".join(f"{label:<{width}}{value}\n" for label, value in rows)


def cmd_reload(args: argparse.Namespace, ctx: Any) -> int:
    base = _endpoint(args, ctx)
    if base is None:
        return EXIT_USAGE
    body = _http(base + "/reload", method="POST")
    if body is None:
        return EXIT_FAIL
    d = json.loads(body)
    print(f"reloaded: {d['reloaded']}, {d['names']} names")
    return EXIT_OK if d["reloaded"] else EXIT_FAIL

"""Talking to a running filter through its loopback stats/control endpoint.

``dns check`` asks the running ``dns serve`` (``GET /check``) so it explains the lists and groups
that are really in use, whatever options the server was started with; without a running filter
it falls back to the config file's ``[dns]`` section and says so.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from photoguard.dnsfilter.config import DnsConfig, parse_hostport


def endpoint_url(stats_listen: str) -> str:
    """``"127.0.0.1:9153"`` → ``"http://127.0.0.1:9153"`` (IPv6 in brackets)."""
    host, port = parse_hostport(stats_listen, 9153)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_via_server(stats_listen: str, name: str, client: str, timeout: float = 30.0) -> dict[str, Any] | None:
    """The running filter's explanation of ``name`` for ``client``; None when none answers.

    None also for anything at that address that is not a filter with a ``/check`` endpoint
    (another service, an older filter): the caller then falls back to the config.
    """
    base = endpoint_url(stats_listen)
    url = f"{base}/check?" + urllib.parse.urlencode({"name": name, "client": client})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if not isinstance(data, dict) or "verdict" not in data:
        return None
    data["source"] = f"running filter at {base}"
    return data


def explain_for_check(cfg: DnsConfig, root: Path, name: str, client: str, local: bool = False) -> dict[str, Any] | None:
    """What ``dns check`` reports: the running filter's verdict when one answers, else the config's.

    ``local`` (lists given on the command line) skips the server. Notes on where the verdict
    comes from go to stderr, so the output on stdout keeps its format. None: an error was
    printed (list files missing).
    """
    if not local:
        if cfg.stats_listen:
            res = check_via_server(cfg.stats_listen, name, client)
            if res is not None:
                print(f"(verdict of the {res['source']})", file=sys.stderr)
                return res
            why = f"no running DNS filter answers at {endpoint_url(cfg.stats_listen)} (dns.stats_listen)"
        else:
            why = "the stats/control endpoint is off (dns.stats_listen = '')"
        print(
            f"note: {why}; this verdict comes from the lists in the config file, "
            "which may differ from what 'dns serve' was started with",
            file=sys.stderr,
        )
    from photoguard.dnsfilter.server import ListPaths, build_policy

    paths = ListPaths.from_config(cfg, root)
    missing = [str(p) for p in paths.all_paths() if not p.is_file()]
    if missing:
        print(f"list files not found: {', '.join(missing)}", file=sys.stderr)
        return None
    res = build_policy(cfg, paths).explain(name, client)
    res["source"] = "command-line lists" if local else "config file"
    return res

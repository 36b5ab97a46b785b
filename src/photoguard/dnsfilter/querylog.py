"""Privacy-aware query log: daily JSONL files, reduced client addresses, bounded retention.

Pupils' browsing is personal data (AVG/GDPR): by default only blocked queries are logged, client
addresses are cut to their network (/24 for IPv4, /56 for IPv6) or replaced by a salted hash,
and files older than the retention period are deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import IO

from photoguard.dnsfilter.config import QueryLogConfig

log = logging.getLogger(__name__)

PREFIX = "dns-"
SUFFIX = ".jsonl"


def reduce_client(ip: str, cfg: QueryLogConfig, salt: bytes) -> str:
    """The form of a client address that may be stored."""
    if cfg.client == "omit":
        return "-"
    if cfg.client == "hash":
        return hashlib.blake2s(ip.encode(), key=salt[:32], digest_size=8).hexdigest()
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "-"
    plen = cfg.ipv4_prefix if addr.version == 4 else cfg.ipv6_prefix
    return str(ipaddress.ip_network(f"{addr}/{plen}", strict=False))


class QueryLog:
    def __init__(self, cfg: QueryLogConfig, directory: Path) -> None:
        self.cfg = cfg
        self.dir = directory
        self.enabled = cfg.mode != "off"
        self.log_all = cfg.mode == "all"
        self._fh: IO[str] | None = None
        self._day = ""
        self._pending = 0
        self._salt = b""
        self._clients: dict[str, str] = {}  # address → stored form (memo)
        self._sec = -1
        self._stamp = ""
        self._day_now = ""
        if self.enabled:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._salt = self._load_salt()
            self.expire()

    def _load_salt(self) -> bytes:
        path = self.dir / "salt"
        try:
            data = path.read_bytes()
            if len(data) >= 32:
                return data[:32]
        except OSError:
            pass
        data = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return data

    def _file(self, day: str) -> IO[str]:
        if self._fh is None or day != self._day:
            if self._fh is not None:
                self._fh.close()
            path = self.dir / f"{PREFIX}{day}{SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._fh = os.fdopen(fd, "a", encoding="utf-8")
            self._day = day
            self.expire()
        return self._fh

    def write(self, client: str, name: str, qtype: int, action: str, reason: str, group: str) -> None:
        if not self.enabled:
            return
        sec = int(time.time())
        if sec != self._sec:
            now = dt.datetime.fromtimestamp(sec, dt.UTC)
            self._stamp = now.isoformat(timespec="seconds")
            self._day_now = now.strftime("%Y-%m-%d")
            self._sec = sec
        who = self._clients.get(client)
        if who is None:
            if len(self._clients) > 65536:
                self._clients.clear()
            who = self._clients[client] = reduce_client(client, self.cfg, self._salt)
        if not name.isascii() or '"' in name or "\\" in name or not name.isprintable():
            name = json.dumps(name)[1:-1]
        line = (
            f'{{"t":"{self._stamp}","client":"{who}","group":"{group}","name":"{name}",'
            f'"qtype":{qtype},"action":"{action}","reason":"{reason}"}}\n'
        )
        try:
            self._file(self._day_now).write(line)
            self._pending += 1
        except OSError as e:
            log.error("query log write failed: %s", e)
            self.enabled = False

    def flush(self) -> None:
        if self._fh is not None and self._pending:
            self._fh.flush()
            self._pending = 0

    def expire(self, today: dt.date | None = None) -> int:
        """Delete daily files older than the retention period; returns how many."""
        today = today or dt.datetime.now(dt.UTC).date()
        cutoff = today - dt.timedelta(days=self.cfg.retention_days)
        removed = 0
        for p in self.dir.glob(f"{PREFIX}*{SUFFIX}"):
            try:
                day = dt.date.fromisoformat(p.name[len(PREFIX) : -len(SUFFIX)])
            except ValueError:
                continue
            if day < cutoff:
                p.unlink(missing_ok=True)
                removed += 1
        return removed

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

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


def _file_key(path: Path) -> tuple[str, int] | None:
    """(day, rotation number) of a log file name; the current file of a day sorts last."""
    name = path.name
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    stem = name[len(PREFIX) : -len(SUFFIX)]
    day, rest = stem[:10], stem[10:]
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        return None
    if not rest:
        return day, 1 << 62
    if rest[0] != "." or not rest[1:].isdigit():
        return None
    return day, int(rest[1:])


class QueryLog:
    """Append-only JSONL log with three bounds on what it can cost the disk it shares:

    * a rate cap (``max_lines_per_s``): lines beyond it in one second are counted, not written,
      and summarised by one ``"action":"suppressed"`` line with their count;
    * a size cap (``max_file_kb``): the current file ``dns-DAY.jsonl`` is renamed to
      ``dns-DAY.N.jsonl`` when it reaches the size, and a new one is started;
    * a file cap (``max_files``, the current one included): the oldest files are deleted;
      besides that, files older than ``retention_days`` go.
    """

    def __init__(self, cfg: QueryLogConfig, directory: Path) -> None:
        self.cfg = cfg
        self.dir = directory
        self.enabled = cfg.mode != "off"
        self.log_all = cfg.mode == "all"
        self._fh: IO[str] | None = None
        self._day = ""
        self._size = 0
        self._max_bytes = cfg.max_file_kb * 1024
        self._pending = 0
        self._salt = b""
        self._clients: dict[str, str] = {}  # address → stored form (memo)
        self._sec = -1
        self._stamp = ""
        self._day_now = ""
        self._rate_sec = -1
        self._rate_used = 0
        self._held = 0  # lines suppressed in the current second, not yet summarised
        self._held_stamp = ""
        self._warned_at = -1e9
        #: Lines not written because of the rate cap, since start.
        self.suppressed = 0
        #: Files rotated because of the size cap, since start.
        self.rotations = 0
        if self.enabled:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._salt = self._load_salt()
            self.expire()
            self.prune()

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

    def _path(self, day: str) -> Path:
        return self.dir / f"{PREFIX}{day}{SUFFIX}"

    def _file(self, day: str) -> IO[str]:
        if self._fh is None or day != self._day:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            fd = os.open(self._path(day), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._size = os.fstat(fd).st_size
            self._fh = os.fdopen(fd, "a", encoding="utf-8")
            self._day = day
            self.expire()
            self.prune()
        return self._fh

    def _rotate(self) -> None:
        """Move the full current file aside as ``dns-DAY.N.jsonl`` (N one above the last)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        last = 0
        for p in self.dir.glob(f"{PREFIX}{self._day}.*{SUFFIX}"):
            key = _file_key(p)
            if key is not None and key[0] == self._day:
                last = max(last, key[1])
        os.replace(self._path(self._day), self.dir / f"{PREFIX}{self._day}.{last + 1}{SUFFIX}")
        self.rotations += 1
        self._size = 0
        self.prune()

    def _emit(self, line: str) -> None:
        try:
            self._file(self._day_now).write(line)
            self._pending += 1
            self._size += len(line)  # ASCII only: names are escaped, the rest is ours
            if self._size >= self._max_bytes:
                self._rotate()
        except OSError as e:
            log.error("query log write failed, logging stops: %s", e.strerror or e)
            self.enabled = False

    def _tick(self, sec: int) -> None:
        if sec != self._sec:
            now = dt.datetime.fromtimestamp(sec, dt.UTC)
            self._stamp = now.isoformat(timespec="seconds")
            self._day_now = now.strftime("%Y-%m-%d")
            self._sec = sec
        if sec != self._rate_sec:
            self._summarise()
            self._rate_sec = sec
            self._rate_used = 0

    def _summarise(self) -> None:
        if self._held:
            n, self._held = self._held, 0
            self._emit(
                f'{{"t":"{self._held_stamp}","action":"suppressed","count":{n},'
                f'"reason":"rate cap {self.cfg.max_lines_per_s} lines/s"}}\n'
            )

    def write(self, client: str, name: str, qtype: int, action: str, reason: str, group: str) -> None:
        if not self.enabled:
            return
        self._tick(int(time.time()))
        if self._rate_used >= self.cfg.max_lines_per_s:
            self.suppressed += 1
            if not self._held:
                self._held_stamp = self._stamp
                mono = time.monotonic()
                if mono - self._warned_at >= 60.0:
                    self._warned_at = mono
                    log.warning(
                        "query log: more than %d lines/s; the excess is counted, not written (%d so far)",
                        self.cfg.max_lines_per_s,
                        self.suppressed,
                    )
            self._held += 1
            return
        self._rate_used += 1
        who = self._clients.get(client)
        if who is None:
            if len(self._clients) > 65536:
                self._clients.clear()
            who = self._clients[client] = reduce_client(client, self.cfg, self._salt)
        if not name.isascii() or '"' in name or "\\" in name or not name.isprintable():
            name = json.dumps(name)[1:-1]
        self._emit(
            f'{{"t":"{self._stamp}","client":"{who}","group":"{group}","name":"{name}",'
            f'"qtype":{qtype},"action":"{action}","reason":"{reason}"}}\n'
        )

    def flush(self) -> None:
        """Write a pending summary of a past second, and buffered lines (called every second)."""
        if self.enabled and self._held and int(time.time()) != self._rate_sec:
            self._summarise()
        if self._fh is not None and self._pending:
            try:
                self._fh.flush()
            except OSError as e:
                log.error("query log write failed, logging stops: %s", e.strerror or e)
                self.enabled = False
            self._pending = 0

    def files(self) -> list[Path]:
        """Log files, oldest first (the current file of a day after its rotated ones)."""
        keyed = [(k, p) for p in self.dir.glob(f"{PREFIX}*{SUFFIX}") if (k := _file_key(p)) is not None]
        return [p for _, p in sorted(keyed)]

    def prune(self) -> int:
        """Delete the oldest files beyond ``max_files``; returns how many."""
        files = self.files()
        excess = files[: max(0, len(files) - self.cfg.max_files)]
        for p in excess:
            p.unlink(missing_ok=True)
        return len(excess)

    def expire(self, today: dt.date | None = None) -> int:
        """Delete daily files older than the retention period; returns how many."""
        today = today or dt.datetime.now(dt.UTC).date()
        cutoff = today - dt.timedelta(days=self.cfg.retention_days)
        removed = 0
        for p in self.dir.glob(f"{PREFIX}*{SUFFIX}"):
            key = _file_key(p)
            if key is None:
                continue
            if dt.date.fromisoformat(key[0]) < cutoff:
                p.unlink(missing_ok=True)
                removed += 1
        return removed

    def close(self) -> None:
        if self.enabled and self._held:
            self._summarise()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

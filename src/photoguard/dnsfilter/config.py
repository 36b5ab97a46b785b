"""DNS filter configuration: the ``[dns]`` section of ``photoguard.toml``.

Every field has a default, bounds and a description; unknown keys are rejected. Relative paths
(list files, query log) resolve against the photoguard root folder.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CATEGORY_PATTERN = r"^[a-z0-9_-]{1,32}$"
#: At most this many distinct categories (one bit each in the index).
MAX_CATEGORIES = 16


def parse_hostport(value: str, default_port: int) -> tuple[str, int]:
    """``"1.2.3.4"``, ``"1.2.3.4:53"``, ``"[::1]:53"`` or ``"::1"`` → (host, port)."""
    v = value.strip()
    if v.startswith("["):
        host, _, rest = v[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
    elif v.count(":") == 1:
        host, _, p = v.partition(":")
        port = int(p)
    else:
        host, port = v, default_port
    ipaddress.ip_address(host)  # raises ValueError on a name: no DNS lookups for a DNS server
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {value!r}")
    return host, port


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListSource(_Strict):
    category: str = Field(pattern=CATEGORY_PATTERN, description="Category this list belongs to, e.g. 'porn'")
    path: str = Field(min_length=1, max_length=4096, description="List file (hosts, domains or adblock format)")


class GroupConfig(_Strict):
    name: str = Field("default", pattern=CATEGORY_PATTERN, description="Group name, e.g. 'pupils'")
    networks: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="Client networks (CIDR) in this group; first matching group wins",
    )
    categories: list[str] = Field(
        default_factory=lambda: ["*"],
        max_length=MAX_CATEGORIES + 1,
        description="Blocked categories for this group; '*' means every configured category",
    )
    safesearch: bool = Field(True, description="Force SafeSearch on Google, Bing and DuckDuckGo")
    youtube: Literal["off", "moderate", "strict"] = Field(
        "strict", description="YouTube Restricted Mode: off, moderate or strict"
    )
    allow: list[str] = Field(
        default_factory=list,
        max_length=10000,
        description="Extra allowed domains (with their subdomains) for this group only",
    )

    @field_validator("networks")
    @classmethod
    def _nets(cls, v: list[str]) -> list[str]:
        for n in v:
            ipaddress.ip_network(n, strict=False)
        return v

    @field_validator("categories")
    @classmethod
    def _cats(cls, v: list[str]) -> list[str]:
        import re

        for c in v:
            if c != "*" and not re.fullmatch(CATEGORY_PATTERN, c):
                raise ValueError(f"bad category name {c!r}")
        return v


class QueryLogConfig(_Strict):
    mode: Literal["off", "blocked", "all"] = Field(
        "blocked", description="Which queries to log: off, only blocked ones (default) or all"
    )
    client: Literal["truncate", "hash", "omit"] = Field(
        "truncate",
        description="How client addresses are stored: network prefix, salted hash, or not at all",
    )
    ipv4_prefix: int = Field(24, ge=0, le=32, description="Prefix kept of IPv4 clients (truncate)")
    ipv6_prefix: int = Field(56, ge=0, le=128, description="Prefix kept of IPv6 clients (truncate)")
    retention_days: int = Field(7, ge=1, le=366, description="Days a daily log file is kept")
    directory: str = Field("state/dns-log", min_length=1, max_length=4096, description="Folder of daily JSONL files")
    max_file_kb: int = Field(
        8192, ge=4, le=1_048_576, description="Rotate the current log file when it reaches this size (KiB)"
    )
    max_files: int = Field(
        8,
        ge=1,
        le=1000,
        description="Log files kept in all, the current one included; the oldest beyond this are "
        "deleted (disk use stays under max_files x max_file_kb)",
    )
    max_lines_per_s: int = Field(
        50,
        ge=1,
        le=100_000,
        description="Lines written per second at most; the excess is counted, not written, and "
        "summarised in one 'suppressed' line per second",
    )


class DnsConfig(BaseModel):
    """The ``[dns]`` section: a filtering DNS forwarder for the school network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:53"],
        min_length=1,
        max_length=16,
        description="Addresses to listen on (UDP and TCP), 'ip:port' or '[ipv6]:port'",
    )
    upstreams: list[str] = Field(
        default_factory=lambda: ["9.9.9.9:53", "149.112.112.112:53"],
        min_length=1,
        max_length=8,
        description="Upstream resolvers tried in order, failing over on timeout or SERVFAIL",
    )
    upstream_timeout_ms: int = Field(
        1500, ge=50, le=30000, description="Time to wait for one upstream before trying the next"
    )
    allowed_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        max_length=256,
        description="Clients that may query (CIDR); everybody else gets REFUSED",
    )
    lists: list[ListSource] = Field(default_factory=list, max_length=256, description="Category block lists")
    allowlists: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Allowlist files (same formats); an allowed name is never blocked",
    )
    groups: list[GroupConfig] = Field(
        default_factory=lambda: [GroupConfig.model_validate({})],
        min_length=1,
        max_length=64,
        description="Client groups, matched in order by network",
    )
    default_group: str = Field(
        "default",
        pattern=CATEGORY_PATTERN,
        description="Group for allowed clients in no group's networks",
    )
    block_mode: Literal["nxdomain", "null_ip"] = Field(
        "nxdomain", description="Blocked answer: NXDOMAIN, or 0.0.0.0 / :: for A / AAAA"
    )
    block_ttl: int = Field(60, ge=0, le=86400, description="TTL of blocked answers, seconds")
    block_doh_canary: bool = Field(
        True, description="Answer use-application-dns.net with NXDOMAIN (Firefox keeps school DNS)"
    )
    block_ddr: bool = Field(True, description="Answer resolver.arpa (RFC 9462 DDR) with NODATA: no encrypted upgrade")
    block_private_relay: bool = Field(
        True, description="Answer mask.icloud.com with NXDOMAIN (iCloud Private Relay off)"
    )
    cname_check: bool = Field(True, description="Block answers whose CNAME chain reaches a blocked name (cloaking)")
    cache_size: int = Field(100000, ge=0, le=10_000_000, description="Cached upstream answers (0 turns the cache off)")
    cache_max_ttl: int = Field(86400, ge=0, le=604800, description="Upper bound on cached TTLs")
    cache_negative_ttl: int = Field(
        300, ge=0, le=86400, description="Upper bound on cached NXDOMAIN/NODATA answers, seconds"
    )
    edns_udp_size: int = Field(1232, ge=512, le=4096, description="Largest UDP answer sent to EDNS clients")
    reload_interval_s: int = Field(
        3600,
        ge=0,
        le=604800,
        description="Reload changed list files this often (0: only on SIGHUP / 'dns reload')",
    )
    stats_listen: str = Field(
        "127.0.0.1:9153",
        max_length=64,
        description="Loopback HTTP address for /metrics (Prometheus), /stats, /check and /reload; '' disables",
    )
    tcp_idle_timeout_s: int = Field(
        10, ge=1, le=600, description="Close TCP clients idle between queries after this many seconds"
    )
    tcp_query_timeout_s: float = Field(
        3.0,
        ge=0.1,
        le=60.0,
        description="Whole-query deadline on TCP: length prefix and message must be in within this "
        "many seconds of connecting or of the query's first byte (slow drips are cut off)",
    )
    max_tcp_clients: int = Field(
        256,
        ge=1,
        le=65535,
        description="Concurrent TCP connections in all; when full, the one waiting longest is closed",
    )
    max_tcp_clients_per_ip: int = Field(
        16, ge=1, le=65535, description="Concurrent TCP connections from one client address"
    )
    use_uvloop: bool = Field(True, description="Use uvloop when installed (faster event loop)")
    query_log: QueryLogConfig = Field(
        default_factory=lambda: QueryLogConfig.model_validate({}),
        description="Privacy-aware query log",
    )

    @field_validator("listen", "upstreams")
    @classmethod
    def _addrs(cls, v: list[str]) -> list[str]:
        for a in v:
            parse_hostport(a, 53)
        return v

    @field_validator("stats_listen")
    @classmethod
    def _stats(cls, v: str) -> str:
        if v:
            host, _ = parse_hostport(v, 9153)
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError("the stats endpoint listens on loopback only")
        return v

    @field_validator("allowed_networks")
    @classmethod
    def _nets(cls, v: list[str]) -> list[str]:
        for n in v:
            ipaddress.ip_network(n, strict=False)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DnsConfig:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("group names must be unique")
        if self.default_group not in names:
            raise ValueError(f"default_group {self.default_group!r} is not one of the groups")
        cats = {s.category for s in self.lists}
        if len(cats) > MAX_CATEGORIES:
            raise ValueError(f"at most {MAX_CATEGORIES} categories")
        return self

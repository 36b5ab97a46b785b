"""Counters of the running filter, exported as JSON and Prometheus text."""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

#: Upper bounds (seconds) of the upstream latency histogram buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Stats:
    """Plain integer counters, bumped on the hot path (no locks: one event loop thread)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.queries = 0
        self.queries_tcp = 0
        self.refused = 0
        self.malformed = 0
        self.blocked: dict[str, int] = {}
        self.special: dict[str, int] = {}
        self.cname_blocked = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.forwarded = 0
        self.upstream_errors = 0
        self.upstream_timeouts = 0
        self.upstream_tcp = 0
        self.servfail = 0
        self.truncated = 0
        self.tcp_deadline_closed = 0
        self.tcp_idle_closed = 0
        self.tcp_refused = 0
        self.tcp_evicted = 0
        self.query_log_suppressed = 0
        self.query_log_rotations = 0
        self.reloads = 0
        self.reload_errors = 0
        self.list_names = 0
        self.list_load_seconds = 0.0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def observe_latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def blocked_total(self) -> int:
        return sum(self.blocked.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "uptime_seconds": round(time.time() - self.started, 1),
            "queries": self.queries,
            "queries_tcp": self.queries_tcp,
            "refused": self.refused,
            "malformed": self.malformed,
            "blocked": dict(self.blocked),
            "blocked_total": self.blocked_total(),
            "cname_blocked": self.cname_blocked,
            "special": dict(self.special),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "forwarded": self.forwarded,
            "upstream_errors": self.upstream_errors,
            "upstream_timeouts": self.upstream_timeouts,
            "upstream_tcp_retries": self.upstream_tcp,
            "servfail": self.servfail,
            "truncated": self.truncated,
            "tcp_deadline_closed": self.tcp_deadline_closed,
            "tcp_idle_closed": self.tcp_idle_closed,
            "tcp_refused": self.tcp_refused,
            "tcp_evicted": self.tcp_evicted,
            "query_log_suppressed": self.query_log_suppressed,
            "query_log_rotations": self.query_log_rotations,
            "reloads": self.reloads,
            "reload_errors": self.reload_errors,
            "list_names": self.list_names,
            "list_load_seconds": round(self.list_load_seconds, 3),
            "upstream_latency": {
                "buckets": list(LATENCY_BUCKETS),
                "counts": list(self.latency_counts),
                "sum_seconds": round(self.latency_sum, 6),
            },
        }

    def prometheus(self) -> str:
        p = "photoguard_dns_"
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {p}{name} {help_}")
            lines.append(f"# TYPE {p}{name} {kind}")
            for labels, value in samples:
                lines.append(f"{p}{name}{labels} {value}")

        metric("queries_total", "counter", "Queries received", [("", self.queries)])
        metric("tcp_queries_total", "counter", "Queries received over TCP", [("", self.queries_tcp)])
        metric("refused_total", "counter", "Queries refused (client not allowed)", [("", self.refused)])
        metric(
            "blocked_total",
            "counter",
            "Queries blocked, by category",
            [(f'{{category="{c}"}}', n) for c, n in sorted(self.blocked.items())] or [("", 0)],
        )
        metric(
            "special_total",
            "counter",
            "Special names answered locally (canary, DDR, SafeSearch)",
            [(f'{{kind="{c}"}}', n) for c, n in sorted(self.special.items())] or [("", 0)],
        )
        metric("cname_blocked_total", "counter", "Answers blocked by CNAME", [("", self.cname_blocked)])
        metric("cache_hits_total", "counter", "Answers served from cache", [("", self.cache_hits)])
        metric("cache_misses_total", "counter", "Cache misses", [("", self.cache_misses)])
        metric("forwarded_total", "counter", "Queries sent upstream", [("", self.forwarded)])
        metric(
            "upstream_errors_total",
            "counter",
            "Upstream failures (timeouts, errors, bad answers)",
            [("", self.upstream_errors)],
        )
        metric(
            "upstream_timeouts_total",
            "counter",
            "Upstream timeouts",
            [("", self.upstream_timeouts)],
        )
        metric("servfail_total", "counter", "SERVFAIL answers sent", [("", self.servfail)])
        metric(
            "tcp_closed_total",
            "counter",
            "TCP clients closed by the filter, by reason",
            [
                ('{reason="query_deadline"}', self.tcp_deadline_closed),
                ('{reason="idle"}', self.tcp_idle_closed),
                ('{reason="per_client_cap"}', self.tcp_refused),
                ('{reason="total_cap"}', self.tcp_evicted),
            ],
        )
        metric(
            "query_log_suppressed_total",
            "counter",
            "Query log lines not written because of the rate cap",
            [("", self.query_log_suppressed)],
        )
        metric(
            "query_log_rotations_total",
            "counter",
            "Query log files rotated because of the size cap",
            [("", self.query_log_rotations)],
        )
        metric("reloads_total", "counter", "List reloads", [("", self.reloads)])
        metric("list_names", "gauge", "Names in the block index", [("", self.list_names)])
        lines.append(f"# HELP {p}upstream_latency_seconds Upstream round-trip time")
        lines.append(f"# TYPE {p}upstream_latency_seconds histogram")
        acc = 0
        for b, n in zip(LATENCY_BUCKETS, self.latency_counts, strict=False):
            acc += n
            lines.append(f'{p}upstream_latency_seconds_bucket{{le="{b}"}} {acc}')
        acc += self.latency_counts[-1]
        lines.append(f'{p}upstream_latency_seconds_bucket{{le="+Inf"}} {acc}')
        lines.append(f"{p}upstream_latency_seconds_sum {self.latency_sum:.6f}")
        lines.append(f"{p}upstream_latency_seconds_count {acc}")
        return "\n".join(lines) + "\n"

"""DNS filter benchmark: photoguard vs unbound vs dnsmasq on loopback, driven by dnsperf.

    .venv/bin/python bench/dns_bench.py [--reps 5] [--seconds 8] [--out results.json]

Needs the Debian packages dnsperf, unbound and dnsmasq (``apt-get install -y dnsperf unbound
dnsmasq``) and the real lists in ``../shared/dns/lists``. Every server gets the same 378k names
(unbound: ``local-zone: always_nxdomain``, dnsmasq: ``address=/name/``) and forwards to the same
local fake upstream (a small uvloop server started here). Reported per server and traffic mix:
queries answered per CPU-second of the server process (utime+stime from /proc/PID/stat around
the dnsperf run; medians over the repetitions), RSS with 0, 378k and 1M names, and start-up/load
time. Only 127.0.0.1 is used; every process started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LISTS = REPO.parent / "shared" / "dns" / "lists"
ECHO = "uvloop echo (floor)"
MIXES = {
    # share of cached / blocked / forwarded names in the dnsperf input
    "mixed": (0.5, 0.3, 0.2),
    "cached": (1.0, 0.0, 0.0),
    "blocked": (0.0, 1.0, 0.0),
    "forwarded": (0.0, 0.0, 1.0),
}


# -- helpers (unit-tested) -------------------------------------------------------------------


def parse_dnsperf(text: str) -> dict[str, float]:
    """Figures from dnsperf's summary: sent, completed, lost, qps."""
    out: dict[str, float] = {}
    pats = {
        "sent": r"Queries sent:\s+(\d+)",
        "completed": r"Queries completed:\s+(\d+)",
        "lost": r"Queries lost:\s+(\d+)",
        "qps": r"Queries per second:\s+([\d.]+)",
        "latency_avg_s": r"Average Latency \(s\):\s+([\d.]+)",
    }
    for key, pat in pats.items():
        m = re.search(pat, text)
        if m:
            out[key] = float(m.group(1))
    if "completed" not in out:
        raise ValueError("no dnsperf summary in output")
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        for code, n in re.findall(r"([A-Z]+) (\d+)", m.group(1)):
            out["rcode_" + code] = float(n)
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    rest = stat.rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def read_list_names(paths: Sequence[Path]) -> list[str]:
    """Unique DNS names of the lists, parsed with the filter's own parser."""
    sys.path.insert(0, str(REPO / "src"))
    from photoguard.dnsfilter.lists import parse_text, read_text

    seen: dict[str, None] = {}
    for p in paths:
        block, wild, _ = parse_text(read_text(p))
        for n in block:
            seen[n] = None
        for n in wild:
            seen[n] = None
    return list(seen)


def pad_names(n: int, seed: int = 1) -> list[str]:
    """Synthetic names (``padNNN...``) to grow a list to a given size."""
    rng = random.Random(seed)
    tlds = ["com", "net", "org", "nl", "info", "xyz", "top", "de"]
    return [f"pad{i:07d}{rng.randrange(16**6):06x}.example-{i % 97}.{tlds[i % 8]}" for i in range(n)]


def make_queries(mix: tuple[float, float, float], blocked: Sequence[str], n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        r = rng.random()
        if r < mix[0]:
            lines.append(f"cached-{rng.randrange(1000)}.dnsbench.nl A")
        elif r < mix[0] + mix[1]:
            lines.append(f"{rng.choice(blocked)} A")
        else:
            lines.append(f"fwd-{i}.dnsbench.nl A")
    return "\n".join(lines) + "\n"


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# -- the fake upstream -----------------------------------------------------------------------


def fake_upstream(port: int, echo: bool = False) -> None:
    """Answer every A query with 192.0.2.1; TTL 0 for ``fwd-*`` names (never cached).

    ``echo``: answer NXDOMAIN to everything with no other work — the floor of a Python/uvloop
    UDP server on this machine (what any filter written in Python pays per packet).
    """
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()

    count = [0]

    class Proto(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.tr = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            if len(data) < 17:
                return
            count[0] += 1
            if echo:
                qe = 12
                while data[qe]:
                    qe += data[qe] + 1
                self.tr.sendto(data[:2] + b"\x81\x83\x00\x01" + bytes(6) + data[12 : qe + 5], addr)
                return
            if data[12:24] == b"\x05count\x05bench":  # how many queries so far (as an IPv4)
                rdata = struct.pack("!I", count[0] & 0xFFFFFFFF)
                hdr = data[:2] + bytes((0x81, 0x80)) + b"\x00\x01\x00\x01\x00\x00\x00\x00"
                ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04" + rdata
                self.tr.sendto(hdr + data[12:34] + ans, addr)
                return
            pos = 12
            while data[pos]:
                pos += data[pos] + 1
            qend = pos + 5
            ttl = 0 if data[13:16] == b"fwd" else 3600
            hdr = data[:2] + bytes((0x81, 0x80)) + b"\x00\x01\x00\x01\x00\x00"
            ar = b"\x00\x00"
            opt = b""
            if data[10:12] != b"\x00\x00":
                ar = b"\x00\x01"
                opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
            ans = b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", ttl, 4) + b"\xc0\x00\x02\x01"
            self.tr.sendto(hdr + ar + data[12:qend] + ans + opt, addr)

    loop.run_until_complete(loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", port)))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(port)


def upstream_count(port: int) -> int:
    """Queries the fake upstream has seen (asked directly, never cached)."""
    q = struct.pack("!HHHHHH", 0x4321, 0x0100, 1, 0, 0, 0) + b"\x05count\x05bench\x04test\x00"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(q + b"\x00\x01\x00\x01", ("127.0.0.1", port))
        data = s.recv(512)
    return int(struct.unpack("!I", data[-4:])[0])


def dns_ready(port: int, timeout: float) -> bool:
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x05ready\x04test\x00\x00\x01\x00\x01"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", port))
                if s.recv(512)[:2] == b"\x12\x34":
                    return True
            except OSError:
                time.sleep(0.05)
    return False


@dataclass
class Server:
    name: str
    port: int
    cmd: list[str]
    proc: subprocess.Popen[bytes] | None = None
    start_seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 300) -> None:
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **self.env},
        )
        if not dns_ready(self.port, timeout):
            err = b""
            self.stop()
            if self.proc.stderr is not None:
                err = self.proc.stderr.read()
            raise RuntimeError(f"{self.name} did not start: {err.decode(errors='replace')[-2000:]}")
        self.start_seconds = time.monotonic() - t0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def photoguard_server(work: Path, upstream: int, list_files: Sequence[tuple[str, Path]], uvloop: bool = True) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "photoguard", "--root", str(work), "dns", "serve"]
    cmd += ["--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}", "--no-stats"]
    for cat, path in list_files:
        cmd += ["--list", f"{cat}={path}"]
    if not uvloop:
        cmd.append("--no-uvloop")
    name = "photoguard" + ("" if uvloop else " (asyncio)")
    return Server(name, port, cmd, env={"PYTHONPATH": str(REPO / "src")})


def unbound_server(work: Path, upstream: int, names: Sequence[str], tag: str) -> Server:
    port = free_port()
    conf = work / f"unbound-{tag}.conf"
    with open(conf, "w") as f:
        f.write(
            "server:\n"
            f"  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  num-threads: 1\n"
            '  chroot: ""\n  username: ""\n  pidfile: ""\n  use-syslog: no\n  logfile: ""\n'
            "  verbosity: 0\n  access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n"
            '  module-config: "iterator"\n  qname-minimisation: no\n  do-ip6: no\n'
            "  so-reuseport: no\n  harden-referral-path: no\n  minimal-responses: yes\n"
        )
        for n in names:
            f.write(f'  local-zone: "{n}." always_nxdomain\n')
        f.write(f'forward-zone:\n  name: "."\n  forward-addr: 127.0.0.1@{upstream}\n')
    return Server("unbound", port, ["unbound", "-d", "-c", str(conf)])


def dnsmasq_server(work: Path, upstream: int, names: Sequence[str], tag: str) -> Server:
    port = free_port()
    conf = work / f"dnsmasq-{tag}.conf"
    with open(conf, "w") as f:
        f.write(
            f"port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
            f"server=127.0.0.1#{upstream}\ncache-size=10000\nuser=root\npid-file=\n"
        )
        for n in names:
            f.write(f"address=/{n}/\n")
    return Server("dnsmasq", port, ["dnsmasq", "-k", f"--conf-file={conf}"])


def run_dnsperf(port: int, qfile: Path, seconds: float, clients: int = 4) -> dict[str, float]:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile), "-l", str(seconds)]
    cmd += ["-c", str(clients), "-q", "200", "-t", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    return parse_dnsperf(out.stdout)


def measure(srv: Server, qfile: Path, seconds: float, up_port: int) -> dict[str, float]:
    u0 = upstream_count(up_port)
    c0 = cpu_seconds(srv.pid)
    res = run_dnsperf(srv.port, qfile, seconds)
    cpu = cpu_seconds(srv.pid) - c0
    res["upstream_share"] = (upstream_count(up_port) - u0 - 1) / max(res["completed"], 1)
    res["nxdomain_share"] = res.get("rcode_NXDOMAIN", 0.0) / max(res["completed"], 1)
    res["cpu_s"] = cpu
    res["q_per_cpu_s"] = res["completed"] / cpu if cpu > 0 else float("nan")
    return res


# -- the benchmark ---------------------------------------------------------------------------


def list_load_times(files: Sequence[tuple[str, Path]], reps: int) -> list[float]:
    sys.path.insert(0, str(REPO / "src"))
    from photoguard.dnsfilter.lists import load_lists

    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        load_lists(list(files), [])
        out.append(time.perf_counter() - t0)
    return out


def memory_phase(
    work: Path, upstream: int, sets: dict[str, tuple[list[str], Path]], log: Callable[[str], None]
) -> dict[str, Any]:
    """RSS and start-up time of each server with 0, 378k and 1M names."""
    out: dict[str, Any] = {}
    for tag, (names, pfile) in sets.items():
        makers: list[Server] = [
            photoguard_server(work, upstream, [("porn", pfile)] if names else []),
            unbound_server(work, upstream, names, tag),
            dnsmasq_server(work, upstream, names, tag),
        ]
        for srv in makers:
            try:
                srv.start()
                time.sleep(0.5)
                rss = rss_mb(srv.pid)
                out.setdefault(srv.name, {})[tag] = {
                    "names": len(names),
                    "rss_mb": round(rss, 1),
                    "start_s": round(srv.start_seconds, 2),
                }
                log(f"  {srv.name:<12} {tag:>5}: RSS {rss:7.1f} MB, ready in {srv.start_seconds:.2f} s")
            finally:
                srv.stop()
    for d in out.values():
        if "0" in d and "1M" in d:
            extra = d["1M"]["rss_mb"] - d["0"]["rss_mb"]
            d["extra_mb_per_1M"] = round(extra * 1e6 / d["1M"]["names"], 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each measurement")
    ap.add_argument("--seconds", type=float, default=6.0, help="dnsperf run length")
    ap.add_argument("--mixes", default="mixed,cached,blocked,forwarded")
    ap.add_argument("--no-memory", action="store_true", help="skip the RSS / 1M names phase")
    ap.add_argument("--out", type=Path, help="write the results as JSON")
    ap.add_argument("--fake-upstream", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.fake_upstream:
        fake_upstream(args.fake_upstream)
        return 0
    if args.echo_server:
        fake_upstream(args.echo_server, echo=True)
        return 0
    for tool in ("dnsperf", "unbound", "dnsmasq"):
        if shutil.which(tool) is None:
            print(f"{tool} missing: apt-get install -y dnsperf unbound dnsmasq", file=sys.stderr)
            return 2
    if not LISTS.is_dir():
        print(f"lists not found at {LISTS}", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, flush=True)

    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "reps": args.reps,
        "seconds": args.seconds,
    }
    sys.path.insert(0, str(REPO / "src"))
    sys.path.insert(0, str(REPO))
    from tests.support.dnslists import shared_dns_lists

    files = [(c, p) for c, p in shared_dns_lists(LISTS) if p.is_file()]
    names = read_list_names([p for _, p in files])
    log(f"{len(names)} unique names in {len(files)} files")
    loads = list_load_times(files, max(3, args.reps))
    results["list_load_s"] = {"median": round(median(loads), 3), "all": [round(x, 3) for x in loads]}
    log(f"photoguard list load (378k names): median {median(loads):.3f} s")

    with tempfile.TemporaryDirectory(prefix="dnsbench-") as tmp:
        work = Path(tmp)
        up_port = free_port()
        upstream = subprocess.Popen(
            [sys.executable, __file__, "--fake-upstream", str(up_port)],
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
        servers: list[Server] = []
        try:
            time.sleep(0.5)
            rng = random.Random(3)
            blocked = rng.sample(names, 2000)
            blocked = [("www." + n if i % 4 == 0 else n) for i, n in enumerate(blocked)]
            qfiles: dict[str, Path] = {}
            for mix in args.mixes.split(","):
                qf = work / f"q-{mix}.txt"
                qf.write_text(make_queries(MIXES[mix], blocked, 20000, seed=5))
                qfiles[mix] = qf
            servers = [
                photoguard_server(work, up_port, files),
                photoguard_server(work, up_port, files, uvloop=False),
                unbound_server(work, up_port, names, "378k"),
                dnsmasq_server(work, up_port, names, "378k"),
            ]
            echo_port = free_port()
            servers.append(
                Server(
                    ECHO,
                    echo_port,
                    [sys.executable, __file__, "--echo-server", str(echo_port)],
                )
            )
            for srv in servers:
                srv.start()
                log(f"{srv.name} ready on port {srv.port} after {srv.start_seconds:.2f} s")
            # warm the caches
            for srv in servers:
                run_dnsperf(srv.port, qfiles.get("cached", next(iter(qfiles.values()))), 1.5)
            runs: dict[str, dict[str, list[dict[str, float]]]] = {}
            for rep in range(args.reps):
                for mix, qf in qfiles.items():
                    order = servers[rep % len(servers) :] + servers[: rep % len(servers)]
                    for srv in order:
                        if srv.name.endswith("(asyncio)") and mix != "mixed":
                            continue
                        if srv.name == ECHO and mix != "cached":
                            continue
                        r = measure(srv, qf, args.seconds, up_port)
                        runs.setdefault(srv.name, {}).setdefault(mix, []).append(r)
                        log(
                            f"rep {rep + 1} {mix:<9} {srv.name:<22} {r['q_per_cpu_s']:9.0f} q/CPU-s"
                            f"  ({r['qps']:.0f} q/s, lost {r['lost']:.0f}, upstream {r['upstream_share']:.2f},"
                            f" NXDOMAIN {r['nxdomain_share']:.2f})"
                        )
            summary: dict[str, dict[str, Any]] = {}
            for name, mixes in runs.items():
                for mix, rs in mixes.items():
                    summary.setdefault(name, {})[mix] = {
                        "q_per_cpu_s": round(median([r["q_per_cpu_s"] for r in rs])),
                        "qps": round(median([r["qps"] for r in rs])),
                        "lost": sum(r["lost"] for r in rs),
                        "upstream_share": round(median([r["upstream_share"] for r in rs]), 3),
                        "nxdomain_share": round(median([r["nxdomain_share"] for r in rs]), 3),
                        "runs": [round(r["q_per_cpu_s"]) for r in rs],
                    }
            for srv in servers:
                if srv.name in summary:
                    summary[srv.name]["start_s_378k"] = round(srv.start_seconds, 2)
                    summary[srv.name]["rss_mb_378k_after_runs"] = round(rss_mb(srv.pid), 1)
            results["throughput"] = summary
            for srv in servers:
                srv.stop()
            servers = []
            if not args.no_memory:
                log("memory: 0 / 378k / 1M names")
                extra = pad_names(1_000_000 - len(names))
                empty = work / "empty.txt"
                empty.write_text("")
                f378 = work / "names-378k.txt"
                f378.write_text("\n".join(names) + "\n")
                f1m = work / "names-1m.txt"
                f1m.write_text("\n".join(names + extra) + "\n")
                results["memory"] = memory_phase(
                    work,
                    up_port,
                    {"0": ([], empty), "378k": (names, f378), "1M": (names + extra, f1m)},
                    log,
                )
                sys.path.insert(0, str(REPO / "src"))
                from photoguard.dnsfilter.lists import load_lists

                t0 = time.perf_counter()
                ls = load_lists([("porn", f1m)], [])
                results["list_load_s_1M"] = round(time.perf_counter() - t0, 3)
                results["index_bytes_per_name"] = round(ls.block.nbytes / len(ls.block), 1)
        finally:
            for srv in servers:
                srv.stop()
            upstream.send_signal(signal.SIGTERM)
            try:
                upstream.wait(10)
            except subprocess.TimeoutExpired:
                upstream.kill()
    print_report(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def print_report(res: dict[str, Any]) -> None:
    thr = res.get("throughput", {})
    ub = thr.get("unbound", {})
    print("\n| server | mix | q/CPU-s (median) | × unbound | q/s | runs |")
    print("|---|---|---:|---:|---:|---|")
    for name, mixes in thr.items():
        for mix, d in mixes.items():
            if not isinstance(d, dict):
                continue
            ref = ub.get(mix, {}).get("q_per_cpu_s")
            ratio = f"{d['q_per_cpu_s'] / ref:.2f}" if ref else "-"
            runs = ", ".join(str(x) for x in d["runs"])
            print(f"| {name} | {mix} | {d['q_per_cpu_s']} | {ratio} | {d['qps']} | {runs} |")
    mem = res.get("memory")
    if mem:
        print("\n| server | RSS 0 names | RSS 378k | RSS 1M | extra MB per 1M | ready 378k | ready 1M |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, d in mem.items():
            print(
                f"| {name} | {d['0']['rss_mb']} | {d['378k']['rss_mb']} | {d['1M']['rss_mb']} | "
                f"{d.get('extra_mb_per_1M', '-')} | {d['378k']['start_s']} s | {d['1M']['start_s']} s |"
            )
    print(f"\nlist load 378k: {res['list_load_s']['median']} s (median); 1M: {res.get('list_load_s_1M')} s")


if __name__ == "__main__":
    sys.exit(main())

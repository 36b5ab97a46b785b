"""Benchmark of ``photoguard watch`` with the REAL models (default configuration).

1. makes distinct 12 MP JPEGs (4000x3000) by tiling WIDER FACE validation images from
   ../shared/faces/widerval250/dev into a temporary folder (never into the repository);
2. starts ``python -m photoguard --root R watch`` on a fresh root;
3. steady phase: drops one photo per second (written to a hidden temp name, then renamed, as sync
   clients do) for ``--seconds`` seconds and measures, per photo, the time from the drop to the
   moment all channel files are committed (the ledger rows are written in the same transaction
   as the renames; polled every 50 ms), and samples the service's RSS from /proc;
4. ceiling phase: drops ``--burst`` photos at once and measures photos per minute;
5. pool phase (optional, ``--pool``): the same batch through one Pipeline with 1 and 2 threads
   and through 2 processes with a Pipeline each (threads vs processes).

    .venv/bin/python bench/watch_bench.py --seconds 120 --burst 24 --pool 8
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WIDER = REPO.parent / "shared" / "faces" / "widerval250" / "dev" / "images"
N_CHANNELS = 5


def make_photos(folder: Path, n: int, seed: int = 7) -> list[Path]:
    """``n`` distinct 4000x3000 JPEGs tiled from WIDER images (random order, offsets)."""
    if not WIDER.is_dir():
        sys.exit(f"data missing: {WIDER} (../shared must sit beside the repository)")
    sources = sorted(p for p in WIDER.rglob("*.jpg"))
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for i in range(n):
        canvas = Image.new("RGB", (4000, 3000), (128, 128, 128))
        y = 0
        while y < 3000:
            x = -rng.randrange(0, 200)
            row_h = 0
            while x < 4000:
                with Image.open(rng.choice(sources)) as im:
                    tile = im.convert("RGB")
                canvas.paste(tile, (x, y))
                x += tile.width
                row_h = max(row_h, tile.height)
            y += max(200, row_h)
        p = folder / f"bench_{i:04d}.jpg"
        canvas.save(p, quality=90)
        out.append(p)
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sha256_file(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


class Watcher:
    """Polls the ledger for photos whose outputs are all committed (or which were held)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.done: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-poll")

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1)
                now = time.monotonic()
                rows = conn.execute(
                    "SELECT source_sha256, COUNT(*) FROM outputs WHERE withdrawn_at IS NULL "
                    "GROUP BY source_sha256"
                ).fetchall()
                for sha, n in rows:
                    if n >= N_CHANNELS and sha not in self.done:
                        self.done[sha] = now
                for (sha,) in conn.execute("SELECT sha256 FROM photos WHERE status != 'published'"):
                    self.done.setdefault(sha, now)
            except sqlite3.Error:
                conn = None
            time.sleep(0.05)


def drop(src: Path, inbox: Path, i: int) -> None:
    folder = inbox / ("juf-anne" if i % 2 else "meester-bas")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".incoming-{i}.part"
    tmp.write_bytes(src.read_bytes())
    os.replace(tmp, folder / f"IMG_{i:04d}.jpg")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def run_service_phases(
    photos: list[Path], seconds: int, burst: int, workdir: Path, no_full_res: bool = False
) -> dict[str, Any]:
    root = workdir / ("root-1920" if no_full_res else "root")
    subprocess.run([sys.executable, "-m", "photoguard", "init", str(root)], check=True, capture_output=True)
    if no_full_res:  # variant: CenterFace at 1920 px only (no full-resolution pass)
        cfg = root / "photoguard.toml"
        cfg.write_text(cfg.read_text().replace("long_sides = [1920, 0]", "long_sides = [1920]"))
    log = open(workdir / "service.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "photoguard", "--root", str(root), "watch"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    watcher = Watcher(root / "state" / "photoguard.sqlite3")
    watcher.thread.start()
    rss: list[float] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            rss.append(rss_mb(proc.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, name="bench-rss")
    try:
        deadline = time.monotonic() + 60
        while not (root / "state" / "service.json").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("service did not start; see service.log")
            time.sleep(0.1)
        sampler.start()
        inbox = root / "inbox"
        shas = [sha256_file(p) for p in photos]
        # steady phase: one photo per second
        steady: dict[str, float] = {}
        t_start = time.monotonic()
        for i in range(seconds):
            target = t_start + i
            time.sleep(max(0.0, target - time.monotonic()))
            steady[shas[i]] = time.monotonic()
            drop(photos[i], inbox, i)
        wait_until = time.monotonic() + 600
        while any(s not in watcher.done for s in steady) and time.monotonic() < wait_until:
            time.sleep(0.2)
        lat = [watcher.done[s] - t for s, t in steady.items() if s in watcher.done]
        steady_rss = list(rss)
        # ceiling phase: a burst at once
        burst_shas = shas[seconds : seconds + burst]
        t0 = time.monotonic()
        for j, p in enumerate(photos[seconds : seconds + burst]):
            drop(p, inbox, seconds + j)
        while any(s not in watcher.done for s in burst_shas) and time.monotonic() < t0 + 900:
            time.sleep(0.2)
        t_last = max(watcher.done.get(s, time.monotonic()) for s in burst_shas)
        ceiling = len(burst_shas) / (t_last - t0) * 60
        hwm = hwm_mb(proc.pid)
    finally:
        sampling.set()
        watcher.stop.set()
        watcher.thread.join()
        if sampler.is_alive():
            sampler.join()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
        log.close()
    held = 0
    with sqlite3.connect(root / "state" / "photoguard.sqlite3") as conn:
        held = conn.execute("SELECT COUNT(*) FROM photos WHERE status != 'published'").fetchone()[0]
    return {
        "steady_photos": len(steady),
        "steady_done": len(lat),
        "latency_p50_s": round(pct(lat, 50), 2),
        "latency_p95_s": round(pct(lat, 95), 2),
        "latency_max_s": round(max(lat), 2) if lat else None,
        "latency_first10_median_s": round(statistics.median(lat[:10]), 2) if lat else None,
        "latency_last10_median_s": round(statistics.median(lat[-10:]), 2) if lat else None,
        "ceiling_photos_per_min": round(ceiling, 1),
        "burst": len(burst_shas),
        "rss_median_mb": round(statistics.median(steady_rss), 0) if steady_rss else None,
        "rss_max_mb": round(max(rss), 0) if rss else None,
        "rss_hwm_mb": round(hwm, 0),
        "not_published": held,
        "exit_code_after_sigterm": code,
    }


# -- threads vs processes ----------------------------------------------------------------------
def _pool_root(workdir: Path, name: str) -> Path:
    root = workdir / name
    subprocess.run([sys.executable, "-m", "photoguard", "init", str(root)], check=True, capture_output=True)
    return root


def _one_process(root: str, paths: list[str], q: Any) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from photoguard.config import load_settings
    from photoguard.pipeline import Pipeline

    pipe = Pipeline(Path(root), load_settings(Path(root)))
    pipe.detector.warm_up() if hasattr(pipe.detector, "warm_up") else None
    q.put(("ready", os.getpid()))
    t0 = time.monotonic()
    for p in paths:
        pipe.process_path(Path(p), remove_original=False)
    q.put(("done", time.monotonic() - t0, hwm_mb(os.getpid())))


def pool_phase(photos: list[Path], workdir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "src"))
    from photoguard.config import load_settings
    from photoguard.pipeline import Pipeline

    out: dict[str, Any] = {"photos": len(photos)}
    for threads in (1, 2):
        root = _pool_root(workdir, f"pool-t{threads}")
        pipe = Pipeline(root, load_settings(root))
        pipe.process_path(photos[-1], remove_original=False)  # warm up (model load)
        t0 = time.monotonic()
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(lambda p, pl=pipe: pl.process_path(p, remove_original=False), photos[:-1]))
        secs = time.monotonic() - t0
        out[f"threads_{threads}_photos_per_min"] = round((len(photos) - 1) / secs * 60, 1)
        pipe.store.close()
    ctx = mp.get_context("spawn")
    root = _pool_root(workdir, "pool-p2")
    q = ctx.Queue()
    batch = [str(p) for p in photos[:-1]]
    halves = [batch[0::2], batch[1::2]]
    procs = [ctx.Process(target=_one_process, args=(str(root), h, q)) for h in halves]
    for p in procs:
        p.start()
    results = [q.get(timeout=900) for _ in range(4)]
    for p in procs:
        p.join(60)
    done = [r for r in results if r[0] == "done"]
    secs = max(r[1] for r in done)
    out["processes_2_photos_per_min"] = round(len(batch) / secs * 60, 1)
    out["processes_2_hwm_mb_each"] = [round(r[2]) for r in done]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=120, help="steady phase length (1 photo/s)")
    ap.add_argument("--burst", type=int, default=24, help="photos dropped at once (ceiling)")
    ap.add_argument("--pool", type=int, default=0, help="photos for the threads-vs-processes phase")
    ap.add_argument(
        "--no-full-res", action="store_true", help="variant: detectors at 1920 px only (not default)"
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "watch_bench.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pg-watch-bench-") as tmp:
        work = Path(tmp)
        n = args.seconds + args.burst
        t = time.monotonic()
        photos = make_photos(work / "photos", max(n, args.pool))
        print(f"made {len(photos)} 12 MP photos in {time.monotonic() - t:.0f} s", flush=True)
        result: dict[str, Any] = {
            "date": "2026-11-21",
            "cpus": os.cpu_count(),
            "photo": "4000x3000 JPEG q90 tiled from WIDER val",
        }
        if args.pool:
            result["pool"] = pool_phase(photos[: args.pool], work)
            print(json.dumps(result["pool"]), flush=True)
        if args.seconds or args.burst:
            result["config"] = "detect at 1920 px only" if args.no_full_res else "default"
            result["service"] = run_service_phases(photos[:n], args.seconds, args.burst, work, args.no_full_res)
        print(json.dumps(result, indent=1))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of ``photoguard watch`` with the REAL models (default configuration).

1. makes distinct 12 MP JPEGs (4000x3000) in a temporary folder (never in the repository):
   ``--scene school`` (default): school-day scenes from ``school_photos.py`` (a WIDER photo with a
   few bystanders as background, 2-4 LFW "pupils" in front; 8 of them enrolled through the real
   enrolment path, with mixed consent per channel, plus 22 more pupils with random templates);
   ``--scene crowd``: four WIDER crowd photos tiled (~136 faces each, nobody enrolled), a worst case;
2. starts ``python -m photoguard --root R watch`` on that root;
3. steady phase: drops one photo per second (written to a hidden temp name, then renamed, as sync
   clients do) for ``--seconds`` seconds and measures, per photo, the time from the drop to the
   moment its outcome is committed: all channel files (the ledger rows are written in the same
   transaction as the renames) or the hold (polled every 50 ms);
4. ceiling phase: drops ``--burst`` photos at once and measures photos per minute;
5. memory: the service's whole process tree (the service and its template processes), as the
   sum of PSS (proportional set size: shared pages split, not counted twice) sampled every
   0.5 s, and the service process's own RSS; CPU seconds per photo of the whole tree.

    .venv/bin/python bench/watch_bench.py --seconds 120 --burst 24 [--scene crowd] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
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
from pathlib import Path
from typing import Any

from PIL import Image

import school_photos

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


def _status_mb(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree(pid: int) -> list[int]:
    """``pid`` and its children (the template processes are direct children)."""
    out = [pid]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def pss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def cpu_s(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


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


def setup_root(root: Path, scene: str, workers: int, work: Path) -> dict[str, Any]:
    """``photoguard init``; for school scenes the consent list and the enrolled gallery."""
    subprocess.run([sys.executable, "-m", "photoguard", "init", str(root)], check=True, capture_output=True)
    if workers:
        cfg = root / "photoguard.toml"
        text = cfg.read_text()
        if "\nworkers = 0\n" not in text:
            raise SystemExit("cannot set service.workers in the generated config")
        cfg.write_text(text.replace("\nworkers = 0\n", f"\nworkers = {workers}\n", 1))
    if scene != "school":
        return {"enrolled": 0}
    sys.path.insert(0, str(REPO / "src"))
    from photoguard.config import load_settings
    from photoguard.followup.enrol import enrol_dir
    from photoguard.ledger.consent import Registry, parse_csv
    from photoguard.photo.pipeline import Pipeline

    pipe = Pipeline(root, load_settings(root))
    try:
        Registry(pipe.store).import_pupils(parse_csv(school_photos.consent_csv()), source="bench")
        outcomes = enrol_dir(pipe, school_photos.enrol_folder(work / "enrol"))
        vault = pipe.template_vault()
        for j, v in enumerate(school_photos.random_templates(22)):
            vault.add(f"r{j}", v, f"random-{j}")
    finally:
        pipe.templates.close()
        pipe.store.close()
    return {"enrolled_photos": sum(o.ok for o in outcomes), "pupils": 30}


def run_service_phases(
    photos: list[Path], seconds: int, burst: int, root: Path, workdir: Path
) -> dict[str, Any]:
    log = open(workdir / "service.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "photoguard", "--root", str(root), "watch"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    watcher = Watcher(root / "state" / "photoguard.sqlite3")
    watcher.thread.start()
    pss: list[float] = []
    rss: list[float] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            pss.append(pss_mb(tree(proc.pid)))
            rss.append(_status_mb(proc.pid, "VmRSS"))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, name="bench-mem")
    try:
        deadline = time.monotonic() + 120
        while not (root / "state" / "service.json").exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("service did not start; see service.log")
            time.sleep(0.1)
        time.sleep(3)  # the heartbeat file appears before the template processes are up
        idle_pss = pss_mb(tree(proc.pid))
        sampler.start()
        inbox = root / "inbox"
        shas = [sha256_file(p) for p in photos]
        cpu0 = cpu_s(tree(proc.pid))
        # steady phase: one photo per second
        steady: dict[str, float] = {}
        t_start = time.monotonic()
        for i in range(seconds):
            target = t_start + i
            time.sleep(max(0.0, target - time.monotonic()))
            steady[shas[i]] = time.monotonic()
            drop(photos[i], inbox, i)
        wait_until = time.monotonic() + 1200
        while any(s not in watcher.done for s in steady) and time.monotonic() < wait_until:
            time.sleep(0.2)
        lat = [watcher.done[s] - t for s, t in steady.items() if s in watcher.done]
        steady_pss, steady_rss = list(pss), list(rss)
        # ceiling phase: a burst at once
        burst_shas = shas[seconds : seconds + burst]
        t0 = time.monotonic()
        for j, p in enumerate(photos[seconds : seconds + burst]):
            drop(p, inbox, seconds + j)
        while any(s not in watcher.done for s in burst_shas) and time.monotonic() < t0 + 1200:
            time.sleep(0.2)
        t_last = max(watcher.done.get(s, time.monotonic()) for s in burst_shas) if burst_shas else t0
        ceiling = len(burst_shas) / (t_last - t0) * 60 if burst_shas else float("nan")
        cpu_total = cpu_s(tree(proc.pid)) - cpu0
        hwm = _status_mb(proc.pid, "VmHWM")
    finally:
        sampling.set()
        watcher.stop.set()
        watcher.thread.join()
        if sampler.is_alive():
            sampler.join()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
        log.close()
    with sqlite3.connect(root / "state" / "photoguard.sqlite3") as conn:
        held = conn.execute("SELECT COUNT(*) FROM photos WHERE status != 'published'").fetchone()[0]
        visible = conn.execute("SELECT COUNT(*) FROM output_pupils").fetchone()[0]
    done = len(lat) + len(burst_shas)
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
        "cpu_s_per_photo": round(cpu_total / done, 2) if done else None,
        "pss_idle_mb": round(idle_pss),
        "pss_median_mb": round(statistics.median(steady_pss)) if steady_pss else None,
        "pss_max_mb": round(max(pss)) if pss else None,
        "service_rss_median_mb": round(statistics.median(steady_rss)) if steady_rss else None,
        "service_rss_max_mb": round(max(rss)) if rss else None,
        "service_rss_hwm_mb": round(hwm),
        "held_or_rejected": held,
        "pupils_visible_in_outputs": visible,
        "exit_code_after_sigterm": code,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=120, help="steady phase length (1 photo/s)")
    ap.add_argument("--burst", type=int, default=24, help="photos dropped at once (ceiling)")
    ap.add_argument("--scene", choices=["school", "crowd"], default="school")
    ap.add_argument("--workers", type=int, default=0, help="service.workers (0 = the default: half the cores)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or REPO / "bench" / "out" / f"watch_bench_{args.scene}_w{args.workers}.json"
    with tempfile.TemporaryDirectory(prefix="pg-watch-bench-") as tmp:
        work = Path(tmp)
        n = args.seconds + args.burst
        t = time.monotonic()
        if args.scene == "school":
            photos = school_photos.make_school_photos(work / "photos", n)
        else:
            photos = make_photos(work / "photos", n)
        print(f"made {len(photos)} 12 MP photos in {time.monotonic() - t:.0f} s", flush=True)
        root = work / "root"
        result: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "load_avg_at_start": os.getloadavg()[0],
            "scene": args.scene,
            "workers": args.workers or "default",
            "photo": "4000x3000 JPEG q90",
        }
        result["setup"] = setup_root(root, args.scene, args.workers, work)
        result["service"] = run_service_phases(photos, args.seconds, args.burst, root, work)
        print(json.dumps(result, indent=1))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retention sweep and consent propagation at school-archive scale.

A synthetic ledger (rows inserted directly into SQLite): 1,000 pupils, 100,000 outputs over five
channels with 0-3 visible pupils each, placeholder files on disk for a share of them, vault
originals, quarantine items, audit events and stale temp files. Measures

* a full sweep (first run: real work) and a second, idempotent sweep (nothing to do);
* peak Python memory of the sweep (tracemalloc, separate run) and the process's max RSS;
* one consent change (``website=no`` for a pupil with many outputs) propagated: ledger update,
  takedown rows, file deletions (no re-render: that needs the face models and the vault).

Usage: .venv/bin/python bench/retention_bench.py [--outputs 100000] [--pupils 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from photoguard.config import load_settings
from photoguard.followup.propagate import propagate_changes
from photoguard.followup.retention import Sweeper
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store, iso
from photoguard.service.setup import init_root

TODAY = date(2026, 11, 21)
NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
CHANNELS = (("newsletter", "newsletter"), ("parro", "parro"), ("guide", "guide"),
            ("website", "website"), ("social", "social"))  # fmt: skip
KEYS = ("newsletter", "parro", "guide", "website", "social", "classlist_phone", "face_matching")


def build(base: Path, n_outputs: int, n_pupils: int, file_share: float, seed: int) -> dict[str, Any]:
    """Create a root with the synthetic ledger; returns what was planted."""
    rng = random.Random(seed)
    root = base / "school"
    init_root(root)
    store = Store(root / "state" / "photoguard.sqlite3")
    now_s = iso(NOW)
    pupils, consent = [], []
    leavers = set(rng.sample(range(n_pupils), n_pupils // 20))  # 5% left this year
    unpropagated = set(rng.sample(range(n_pupils), n_pupils // 50))  # 2%: website flipped in SQL
    for i in range(n_pupils):
        pid = f"P{i:05d}"
        left = (TODAY - timedelta(days=rng.randint(0, 60))).isoformat() if i in leavers else None
        pupils.append((pid, f"First{i}", "", f"Sur{i}", str(1 + i % 8), left, "", now_s, now_s))
        for k in KEYS:
            yes = rng.random() < 0.9
            if k == "website" and i in unpropagated:
                yes = False
            consent.append((pid, k, int(yes)))
    ids = [p[0] for p in pupils]
    with store.transaction() as c:
        c.executemany("INSERT INTO pupils VALUES(?,?,?,?,?,?,?,?,?)", pupils)
        c.executemany("INSERT INTO consent(pupil_id, key, value) VALUES(?,?,?)", consent)
        Store.set_meta(c, "consent_version", "1")
    allowed = {(r[0], r[1]) for r in consent if r[2]}
    outputs, links, files = [], [], []
    n_photos = n_outputs // len(CHANNELS)
    oid = 0
    for ph in range(n_photos):
        sha = f"{ph:064x}"
        day = TODAY - timedelta(days=rng.randint(0, 700))
        visible_base = rng.sample(ids, rng.randint(0, 3))
        for ch, key in CHANNELS:
            oid += 1
            # at publication time the pupil had consent (the unpropagated ones had website too)
            vis = sorted(
                p for p in visible_base
                if (p, key) in allowed or (key == "website" and int(p[1:]) in unpropagated)
            )  # fmt: skip
            rel = f"outbox/{ch}/{day.isoformat()}_groep-{1 + ph % 8}_foto-{ph}_1.jpg"
            outputs.append(
                (oid, sha, ch, rel, f"{oid:064x}", json.dumps(vis), 1, iso(NOW - timedelta(days=(TODAY - day).days)))
            )
            links.extend((oid, p) for p in vis)
            if rng.random() < file_share:
                files.append(rel)
    with store.transaction() as c:
        c.executemany(
            "INSERT INTO outputs(id, source_sha256, channel, path, sha256, visible_pupils, consent_version, "
            "created_at) VALUES(?,?,?,?,?,?,?,?)",
            outputs,
        )
        c.executemany("INSERT INTO output_pupils(output_id, pupil_id) VALUES(?,?)", links)
        audit = [
            (iso(NOW - timedelta(days=rng.randint(0, 800))), "publish", f"{i:064x}", None, None, "{}")
            for i in range(n_outputs)
        ]
        c.executemany(
            "INSERT INTO audit(at, event, photo_sha256, pupil_id, channel, detail) VALUES(?,?,?,?,?,?)", audit
        )
        quarantine = [
            (f"q{i:05d}", f"{i:064x}", "held", "review", "[]", iso(NOW - timedelta(days=rng.randint(0, 90))))
            for i in range(200)
        ]
        c.executemany(
            "INSERT INTO quarantine(id, sha256, status, reason, held_channels, created_at) VALUES(?,?,?,?,?,?)",
            quarantine,
        )
    store.checkpoint()
    store.close()
    return {"root": root, "files": files, "quarantine": [q[0] for q in quarantine], "seed": seed}


def plant_files(root: Path, planted: dict[str, Any]) -> None:
    rng = random.Random(planted["seed"])
    for rel in planted["files"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\xff\xd8placeholder\xff\xd9")
    vault = root / "vault"
    vault.mkdir(exist_ok=True)
    for i in range(2000):
        p = vault / f"{i:064x}.enc"
        p.write_bytes(b"gAAAAA-placeholder")
        t = (NOW - timedelta(days=rng.randint(0, 60))).timestamp()
        os.utime(p, (t, t))
    for q in planted["quarantine"]:
        d = root / "quarantine" / q
        d.mkdir(parents=True, exist_ok=True)
        (d / "original.jpg").write_bytes(b"x")
        (d / "reason.json").write_text("{}")
    for i in range(50):
        p = root / "outbox" / "parro" / f".pg-{i:04x}.tmp"
        p.write_bytes(b"t")
        t = (NOW - timedelta(hours=3)).timestamp()
        os.utime(p, (t, t))


def fresh_copy(template: Path, work: Path, planted: dict[str, Any]) -> Path:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(template, work, symlinks=True)
    plant_files(work, planted)
    return work


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outputs", type=int, default=100_000)
    ap.add_argument("--pupils", type=int, default=1_000)
    ap.add_argument("--file-share", type=float, default=0.3, help="share of outputs with a file")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="pg-retention-bench-") as tmp:
        base = Path(tmp)
        t = time.perf_counter()
        planted = build(base / "template", args.outputs, args.pupils, args.file_share, seed=7)
        template = planted["root"]
        print(f"built ledger in {time.perf_counter() - t:.1f} s: {args.outputs} outputs, "
              f"{args.pupils} pupils, {len(planted['files'])} files")  # fmt: skip
        settings = load_settings(template)
        work = base / "work"

        first, second, withdrawn = [], [], []
        for _ in range(args.runs):
            root = fresh_copy(template, work, planted)
            store = Store(root / "state" / "photoguard.sqlite3")
            t = time.perf_counter()
            rep = Sweeper(root, settings, store, today=TODAY, now=NOW).run()
            first.append(time.perf_counter() - t)
            withdrawn.append(rep.outputs_withdrawn)
            t = time.perf_counter()
            again = Sweeper(root, settings, store, today=TODAY, now=NOW).run()
            second.append(time.perf_counter() - t)
            assert not again.changed_anything
            store.close()
        last = rep

        # memory: one more first sweep under tracemalloc
        root = fresh_copy(template, work, planted)
        store = Store(root / "state" / "photoguard.sqlite3")
        tracemalloc.start()
        Sweeper(root, settings, store, today=TODAY, now=NOW).run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        # single consent change, propagated (on the swept root: the realistic steady state)
        Sweeper(root, settings, store, today=TODAY, now=NOW).run()
        busiest = store.query(
            "SELECT op.pupil_id, COUNT(*) AS n FROM output_pupils op JOIN outputs o ON o.id = op.output_id "
            "JOIN consent c ON c.pupil_id = op.pupil_id AND c.key='website' AND c.value=1 "
            "JOIN pupils p ON p.pupil_id = op.pupil_id AND p.left_on IS NULL "
            "WHERE o.channel='website' AND o.withdrawn_at IS NULL GROUP BY op.pupil_id ORDER BY n DESC LIMIT ?",
            (args.runs,),
        )
        change_times, change_counts = [], []
        for r in busiest:
            t = time.perf_counter()
            changes = Registry(store).set_consent(r["pupil_id"], "website", False, source="bench")
            prop = propagate_changes(root, settings, store, changes, today=TODAY)
            change_times.append(time.perf_counter() - t)
            change_counts.append(len(prop.withdrawn))
        store.close()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def ms(xs: list[float]) -> str:
        return f"{statistics.median(xs) * 1000:.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"full sweep, first run: median {ms(first)}; withdrew {statistics.median(withdrawn):.0f} outputs")
    print(f"  last run detail: {json.dumps({k: v for k, v in last.to_json().items() if k != 'refused'})}")
    print(f"full sweep, second run (nothing to do): median {ms(second)}")
    print(f"sweep peak Python memory (tracemalloc): {peak / 1e6:.1f} MB; process max RSS {rss_mb:.0f} MB")
    print(f"single consent change propagated: median {ms(change_times)}; outputs withdrawn per change "
          f"{statistics.median(change_counts):.0f} (max {max(change_counts)})")  # fmt: skip


if __name__ == "__main__":
    main()

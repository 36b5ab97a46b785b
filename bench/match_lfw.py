"""Consent-gallery simulation on lfw60x5/dev (18 people × 5 photos) to pick the match thresholds.

For each trial: a random half of the people are "enrolled" with 4 random photos each; their fifth
photo must stay visible (MATCH to the right pupil); every photo of the other people (strangers,
i.e. pupils without consent or visitors) must never MATCH anybody. Sweeps match_distance and
margin; review_distance is reported as the share of faces held for review (NEAR).

    PYTHONPATH=src .venv/bin/python bench/match_lfw.py [--trials 2000]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from _common import LFW, load_rgb, machine, md_table, need
from photoguard.config import IdentifyConfig, YuNetConfig
from photoguard.core.records import Box, MatchKind
from photoguard.photo.detect import build_detector
from photoguard.photo.identify import Gallery, TemplateModel, match_faces

#: the match_distance the review_distance sweep is run at (the shipped default)
CHOSEN = IdentifyConfig().match_distance


def lfw_templates() -> dict[str, list[np.ndarray]]:
    det = build_detector(YuNetConfig(long_sides=[0], score=0.3))
    tm = TemplateModel()
    out: dict[str, list[np.ndarray]] = {}
    misses = 0
    for person in sorted(p for p in need(LFW).iterdir() if p.is_dir()):
        vecs = []
        for f in sorted(person.iterdir())[:5]:
            rgb = load_rgb(f)
            h, w = rgb.shape[:2]
            dets = det.detect(rgb)
            if dets:  # the face nearest the centre (LFW crops are centred)
                box = min(dets, key=lambda d: np.hypot(d.box.center[0] - w / 2, d.box.center[1] - h / 2)).box
            else:
                misses += 1
                box = Box(w * 0.3, h * 0.3, w * 0.7, h * 0.7)
            vecs.append(tm.templates(rgb, [box])[0])
        out[person.name] = vecs
    print(f"{len(out)} people, {sum(len(v) for v in out.values())} photos, {misses} without detection")
    return out


def distances(vecs: dict[str, list[np.ndarray]]) -> None:
    names = list(vecs)
    same, diff = [], []
    for a, b in itertools.combinations(range(len(names)), 2):
        for x in vecs[names[a]]:
            for y in vecs[names[b]]:
                diff.append(float(np.linalg.norm(x - y)))
    for n in names:
        for x, y in itertools.combinations(vecs[n], 2):
            same.append(float(np.linalg.norm(x - y)))
    s, d = np.array(same), np.array(diff)
    print(
        f"same-person distance median {np.median(s):.3f} (p95 {np.percentile(s, 95):.3f}, max {s.max():.3f}); "
        f"different-person median {np.median(d):.3f} (min {d.min():.3f}, p1 {np.percentile(d, 1):.3f})"
    )


def simulate(vecs: dict[str, list[np.ndarray]], cfg: IdentifyConfig, trials: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    names = list(vecs)
    n_enrol = len(names) // 2
    c = dict.fromkeys(
        ["own", "own_visible", "own_near", "own_wrong", "str", "str_visible", "str_near", "trials_leak"],
        0,
    )
    for _ in range(trials):
        perm = rng.permutation(len(names))
        enrolled = [names[i] for i in perm[:n_enrol]]
        strangers = [names[i] for i in perm[n_enrol:]]
        ids: list[str] = []
        rows: list[np.ndarray] = []
        probes: dict[str, np.ndarray] = {}
        for pid in enrolled:
            order = rng.permutation(5)
            for k in order[:4]:
                ids.append(pid)
                rows.append(vecs[pid][k])
            probes[pid] = vecs[pid][order[4]]
        g = Gallery(tuple(ids), np.stack(rows))
        for pid, t in probes.items():
            m = match_faces([t], g, cfg)[0]
            c["own"] += 1
            c["own_visible"] += m.kind == MatchKind.MATCH and m.pupil_id == pid
            c["own_wrong"] += m.kind == MatchKind.MATCH and m.pupil_id != pid
            c["own_near"] += m.kind == MatchKind.NEAR
        leak = False
        for pid in strangers:
            for m in match_faces(vecs[pid], g, cfg):
                c["str"] += 1
                c["str_visible"] += m.kind == MatchKind.MATCH
                c["str_near"] += m.kind == MatchKind.NEAR
                leak |= m.kind == MatchKind.MATCH
        c["trials_leak"] += leak
    return {
        "consenting visible": c["own_visible"] / c["own"],
        "consenting held (near)": c["own_near"] / c["own"],
        "consenting as someone else": c["own_wrong"] / c["own"],
        "strangers visible": c["str_visible"] / c["str"],
        "strangers held (near)": c["str_near"] / c["str"],
        "galleries with a stranger visible": c["trials_leak"] / trials,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=2000)
    args = ap.parse_args()
    print(machine())
    vecs = lfw_templates()
    distances(vecs)
    rows = []
    keys: list[str] = []
    for md, margin in itertools.product([0.40, 0.45, 0.46, 0.47, 0.48, 0.50, 0.55, 0.60], [0.0, 0.06, 0.10]):
        cfg = IdentifyConfig(match_distance=md, review_distance=max(0.55, md), margin=margin)
        r = simulate(vecs, cfg, args.trials)
        keys = list(r)
        rows.append([f"{md:.2f}", f"{margin:.2f}", *(f"{v:.3f}" for v in r.values())])
    print(f"\n{args.trials} trials, 9 enrolled × 4 photos, 9 strangers × 5 photos each; review 0.55")
    print(md_table(["match_distance", "margin", *keys], rows))
    rows = []
    for rd in [0.50, 0.55, 0.60, 0.65]:
        cfg = IdentifyConfig(match_distance=CHOSEN, review_distance=rd, margin=0.06)
        r = simulate(vecs, cfg, args.trials)
        rows.append([f"{rd:.2f}", *(f"{v:.3f}" for v in r.values())])
    print(f"\nreview_distance sweep at match {CHOSEN}, margin 0.06")
    print(md_table(["review_distance", *keys], rows))


if __name__ == "__main__":
    main()

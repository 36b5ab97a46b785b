"""School-scale recognition: leaks, hold rate and unattended utility, dlib vs SFace.

Built from ``../shared/faces/lfwschool/dev`` (113 "pupils" with 5-6 photos, 1,000 one-photo
"strangers"). A school of N pupils (30, 100, all 113) is split into groups of ~30; 82 % have
face_matching consent and are enrolled with 3 photos each; channel consents are drawn at
realistic rates. Each group gets class photos of 8 of its pupils (a held-out photo each, enrolled
or not) and 4 strangers. Photos are judged face by face at the identify + decide level (no
compositing): the matching of all 12 faces of a photo is joint, as in the pipeline.

Per channel output (photo x channel):
* leak: a face visible that is a stranger, a pupil without consent for the channel, or the wrong
  pupil. Must be 0.
* held: the output waits for a person (some face is a near match to a consenting pupil).
* unattended utility: of the faces of consenting enrolled pupils, the share visible in outputs
  that are not held (no one's work needed).

Rules compared: today's dlib rule over the whole school; the same with group-first; SFace
(cosine) over the whole school and group-first, at a few thresholds. Templates are computed once
per photo and engine (YuNet landmarks; ~1,700 photos) and cached under bench/out/.

    python bench/school_gallery.py [--seeds 5] [--photos 6]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from _common import FACES, OUT, load_rgb, machine, md_table, need
from photoguard.config import IdentifyConfig, NearMatchPolicy, Settings, YuNetConfig
from photoguard.core.decide import decide_all
from photoguard.core.records import FaceAction, Pupil
from photoguard.photo.detect import build_detector
from photoguard.photo.identify import Gallery, TemplateModel, match_faces

DEV = FACES / "lfwschool" / "dev"
CONSENT_RATES = {"newsletter": 0.85, "parro": 0.92, "guide": 0.75, "website": 0.60, "social": 0.45}
FACE_MATCHING_RATE = 0.82
ENROL = 3
GROUP_SIZE = 30
PUPILS_PER_PHOTO = 8
STRANGERS_PER_PHOTO = 4
TODAY = date(2026, 12, 1)


@dataclass
class Faces:
    names: list[str]  # person per face
    files: list[str]
    vectors: dict[str, np.ndarray]  # engine -> (n, 128)
    ms_per_face: dict[str, float]


def embed(engines: Sequence[str]) -> Faces:
    """Templates of the centre face of every dev photo, per engine (cached)."""
    cache = OUT / "school_gallery_templates.npz"
    files = sorted(need(DEV / "pupils").glob("*/*")) + sorted(need(DEV / "strangers").glob("*/*"))
    key = np.array([str(f.relative_to(DEV)) for f in files])
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if list(z["files"]) == list(key) and all(f"v_{e}" in z for e in engines):
            ok = z["ok"]
            return Faces([Path(k).parent.name for k in key[ok]], list(key[ok]),
                         {e: z[f"v_{e}"] for e in engines}, {e: float(z[f"ms_{e}"]) for e in engines})
    det = build_detector(YuNetConfig(long_sides=[0]))
    items = []
    ok = np.zeros(len(files), bool)
    for i, f in enumerate(files):
        rgb = load_rgb(f)
        dets = det.detect(rgb)
        if not dets:
            continue
        c = np.array(rgb.shape[1::-1]) / 2
        d = min(dets, key=lambda x: float(np.hypot(*(np.array(x.box.center) - c))))
        items.append((rgb, d))
        ok[i] = True
    vectors, ms = {}, {}
    for e in engines:
        tm = TemplateModel(engine=e)  # type: ignore[arg-type]
        tm.warm_up()
        t0 = time.perf_counter()
        vectors[e] = np.stack([tm.templates(rgb, [d.box], [d.landmarks])[0] for rgb, d in items])
        ms[e] = (time.perf_counter() - t0) / len(items) * 1000
        print(f"{e}: {len(items)} templates, {ms[e]:.1f} ms per face (one photo at a time)", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, files=key, ok=ok, **{f"v_{e}": v for e, v in vectors.items()},
             **{f"ms_{e}": np.array(m) for e, m in ms.items()})
    return Faces([Path(k).parent.name for k in key[ok]], list(key[ok]), vectors, ms)


@dataclass
class School:
    pupils: dict[str, Pupil]
    groups: dict[str, list[str]]  # group -> pupil ids
    enrol_rows: dict[str, list[int]]  # pupil id -> face rows used for enrolment
    photos: list[tuple[str, list[tuple[int, str | None]]]]  # (group, [(face row, pupil id or None)])


def build_school(faces: Faces, n_pupils: int, photos_per_group: int, rng: np.random.Generator) -> School:
    rows_of: dict[str, list[int]] = {}
    for i, (name, f) in enumerate(zip(faces.names, faces.files, strict=True)):
        if f.startswith("pupils/"):
            rows_of.setdefault(name, []).append(i)
    strangers = [i for i, f in enumerate(faces.files) if f.startswith("strangers/")]
    people = sorted(p for p, r in rows_of.items() if len(r) > ENROL)
    chosen = list(rng.choice(people, size=min(n_pupils, len(people)), replace=False))
    n_groups = max(1, round(len(chosen) / GROUP_SIZE))
    pupils: dict[str, Pupil] = {}
    groups: dict[str, list[str]] = {}
    enrol_rows: dict[str, list[int]] = {}
    probes: dict[str, list[int]] = {}
    for k, name in enumerate(chosen):
        pid = f"p{k:03d}"
        group = str(1 + k % n_groups)
        consents = {key: bool(rng.random() < rate) for key, rate in CONSENT_RATES.items()}
        consents["face_matching"] = bool(rng.random() < FACE_MATCHING_RATE)
        pupils[pid] = Pupil(pid, name, "", "X", group, consents=consents)
        groups.setdefault(group, []).append(pid)
        rows = list(rng.permutation(rows_of[name]))
        if consents["face_matching"]:
            enrol_rows[pid] = rows[:ENROL]
        probes[pid] = rows[ENROL:]
    free_strangers = list(rng.permutation(strangers))
    photos = []
    for group, members in groups.items():
        for _ in range(photos_per_group):
            shown = rng.choice(members, size=min(PUPILS_PER_PHOTO, len(members)), replace=False)
            faces_in: list[tuple[int, str | None]] = [(int(rng.choice(probes[p])), str(p)) for p in shown]
            faces_in += [(int(free_strangers.pop()), None) for _ in range(STRANGERS_PER_PHOTO)]
            photos.append((group, faces_in))
    return School(pupils, groups, enrol_rows, photos)


@dataclass
class Tally:
    outputs: int = 0
    leaks: int = 0
    held: int = 0
    consenting: int = 0
    unattended: int = 0
    ms_match: float = 0.0
    photos: int = 0

    def add(self, other: Tally) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def run(school: School, faces: Faces, engine: str, cfg: IdentifyConfig, group_first: bool) -> Tally:
    settings = Settings()
    channels = settings.channels
    vecs = faces.vectors[engine]
    ids = tuple(pid for pid, rows in school.enrol_rows.items() for _ in rows)
    gallery = Gallery(ids, np.stack([vecs[r] for rows in school.enrol_rows.values() for r in rows]))
    t = Tally()
    for group, shown in school.photos:
        t0 = time.perf_counter()
        matches = match_faces([vecs[r] for r, _ in shown], gallery, cfg,
                              group_pupils=school.groups[group] if group_first else None)
        t.ms_match += (time.perf_counter() - t0) * 1000
        t.photos += 1
        verdicts = decide_all(matches, channels, school.pupils, TODAY, NearMatchPolicy.HOLD)
        for ch in channels:
            t.outputs += 1
            held = any(v[ch.name].action is FaceAction.HOLD for v in verdicts)
            t.held += held
            for (_row, truth), m, v in zip(shown, matches, verdicts, strict=True):
                visible = v[ch.name].action is FaceAction.VISIBLE
                pupil = school.pupils.get(truth) if truth else None
                ok_here = (
                    pupil is not None and pupil.consents_to("face_matching") and pupil.consents_to(ch.consent)
                )
                if visible and (not ok_here or m.pupil_id != truth):
                    t.leaks += 1
                if ok_here:
                    t.consenting += 1
                    t.unattended += visible and not held
    return t


RULES: list[tuple[str, str, dict[str, float], bool]] = [
    ("dlib 0.45 (today)", "opencv", {}, False),
    ("dlib 0.45, group-first (outside 0.40)", "opencv", {}, True),
    ("sface cos 0.45 (review 0.35)", "sface", {"sface_match_similarity": 0.45, "sface_review_similarity": 0.35},
     False),
    ("sface cos 0.45, group-first (outside 0.55)", "sface",
     {"sface_match_similarity": 0.45, "sface_review_similarity": 0.35, "sface_outside_group_similarity": 0.55}, True),
    ("sface cos 0.50 (review 0.35)", "sface", {"sface_review_similarity": 0.35}, False),
    ("sface cos 0.50, group-first (outside 0.60)", "sface", {"sface_review_similarity": 0.35}, True),
    ("sface defaults: cos 0.50, review 0.42, group-first (outside 0.60)", "sface", {}, True),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="schools simulated per size")
    ap.add_argument("--photos", type=int, default=6, help="class photos per group")
    args = ap.parse_args()
    faces = embed(["opencv", "sface"])
    print(f"{machine()}, {date.today().isoformat()}")
    print(f"{len(faces.names)} faces; templates per face, one at a time: "
          + ", ".join(f"{e} {m:.1f} ms" for e, m in faces.ms_per_face.items()))
    rows = []
    for size in (30, 100, 113):
        schools = [build_school(faces, size, args.photos, np.random.default_rng(1000 * size + s))
                   for s in range(args.seeds)]
        enrolled = sum(len(s.enrol_rows) for s in schools) / len(schools)
        for label, engine, extra, group_first in RULES:
            cfg = IdentifyConfig(template_engine=engine, **extra)  # type: ignore[arg-type]
            total = Tally()
            for s in schools:
                total.add(run(s, faces, engine, cfg, group_first))
            rows.append([
                str(size), f"{enrolled:.0f}", label, str(total.photos), str(total.leaks),
                f"{total.held / total.outputs:.3f}", f"{total.unattended / max(1, total.consenting):.3f}",
                f"{total.ms_match / total.photos:.2f}",
            ])
            print(" | ".join(rows[-1]), flush=True)
    print()
    print(md_table(["pupils", "enrolled", "rule", "photos", "leaks", "held", "unattended utility",
                    "match ms/photo"], rows))


if __name__ == "__main__":
    main()

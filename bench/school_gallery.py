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

    python bench/school_gallery.py [--seeds 5] [--photos 6] [--band]

``--band`` instead lists, per size, the faces one enrolment template alone would MATCH between
``sface_match_similarity`` and ``sface_single_photo_similarity`` (pupils' own faces counted,
everyone else named with all their template similarities) and what the default rule (two-photo
support for matches) makes of them; first, at pair level, every 3-photo enrolment set of every
pupil against everyone else's photos and against the pupil's own other photos.

``--pipeline`` runs the same schools through the whole pipeline instead, with the default
configuration (real detector, SFace templates, group-first from the inbox folder): a real school
root per size, consent imported from a CSV, pupils enrolled with ``enrol_photos`` from their
enrolment photos (photos showing more than one face are refused, as in a school), and each class
photo composed of its 12 LFW photos (4x3 tiles) dropped in the group's inbox folder and
processed by ``Pipeline.process_path``. A refused enrolment photo is replaced by another photo of
the pupil not used in a class photo, where there is one. Faces the detector misses count as visible (a leak
unless the pupil consents to the channel); background faces in the LFW photos are strangers, except
a second box mostly inside a tile's face box (a partial duplicate of that face), which is judged
as that tile's person.

    python bench/school_gallery.py --pipeline [--seeds 2] [--photos 6] [--sizes 30 100 113] [--why]

``--why`` lists every face that holds a channel: own pupil / other pupil / stranger or background
face, its size, the candidate pupil (in the photo's group or not, templates enrolled), cosine and
runner-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from _common import FACES, OUT, load_rgb, machine, md_table, need
from photoguard.config import IdentifyConfig, NearMatchPolicy, Settings, YuNetConfig
from photoguard.core.decide import decide_all
from photoguard.core.records import FaceAction, MatchKind, Pupil
from photoguard.photo import identify
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


@contextmanager
def band_fallback(fallback: str | None) -> Iterator[None]:
    """With "near": a face in the two-photo band without support is NEAR (held where its pupil
    consents) instead of redacted; measured only, not a configuration of photoguard."""
    if fallback is None:
        yield
        return
    original = identify.rule_for
    identify.rule_for = lambda cfg: dataclasses.replace(original(cfg), band_fallback=fallback)  # type: ignore[assignment]
    try:
        yield
    finally:
        identify.rule_for = original  # type: ignore[assignment]


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


#: the sface rows before the two-photo support rule (a near match needs one template only)
NO_SUPPORT = {"sface_near_support_similarity": 0.0, "sface_match_support_similarity": 0.0}
#: the sface rows before two-photo support for matches (one template may make a match)
NO_MATCH_SUPPORT = {"sface_match_support_similarity": 0.0}
RULES: list[tuple[str, str, dict[str, float | str], bool]] = [
    ("dlib 0.45 (today)", "opencv", {}, False),
    ("dlib 0.45, group-first (outside 0.40)", "opencv", {}, True),
    ("sface cos 0.45 (review 0.35)", "sface",
     {"sface_match_similarity": 0.45, "sface_review_similarity": 0.35, **NO_SUPPORT}, False),
    ("sface cos 0.45, group-first (outside 0.55)", "sface",
     {"sface_match_similarity": 0.45, "sface_review_similarity": 0.35, "sface_outside_group_similarity": 0.55,
      **NO_SUPPORT}, True),
    ("sface cos 0.50 (review 0.35)", "sface", {"sface_review_similarity": 0.35, **NO_SUPPORT}, False),
    ("sface cos 0.50, group-first (outside 0.60)", "sface", {"sface_review_similarity": 0.35, **NO_SUPPORT}, True),
    ("sface cos 0.50, review 0.42, group-first (outside 0.60), no two-photo support", "sface",
     NO_SUPPORT, True),
    ("sface cos 0.50, review 0.42, group-first (outside 0.60), near needs a 2nd photo >= 0.36", "sface",
     NO_MATCH_SUPPORT, True),
    ("same, cos 0.54 (outside 0.64)", "sface",
     {**NO_MATCH_SUPPORT, "sface_match_similarity": 0.54, "sface_outside_group_similarity": 0.64}, True),
    ("same, cos 0.50; 0.50-0.60 needs a 2nd photo >= 0.46, else redacted", "sface",
     {"sface_match_support_similarity": 0.46}, True),
    ("same, cos 0.50; 0.50-0.60 needs a 2nd photo >= 0.50, else near (held)", "sface", {"fallback": "near"}, True),
    ("sface defaults: the same, else redacted (two-photo support for matches)", "sface", {}, True),
]


def band_report(schools: Sequence[School], faces: Faces) -> list[str]:
    """Who is in the two-photo band: faces that one template alone MATCHes at cosine between
    sface_match_similarity and sface_single_photo_similarity (defaults, the rule off), split
    into the pupils' own faces and everyone else, and what the default rule makes of them."""
    vecs = faces.vectors["sface"]
    on = IdentifyConfig(template_engine="sface")
    off = on.model_copy(update=NO_MATCH_SUPPORT)
    lo, hi = on.sface_match_similarity, on.sface_single_photo_similarity
    own: dict[str, int] = {}
    matched = 0
    lines: list[str] = []
    for school in schools:
        ids = tuple(pid for pid, rows in school.enrol_rows.items() for _ in rows)
        gallery = Gallery(ids, np.stack([vecs[r] for rows in school.enrol_rows.values() for r in rows]))
        for group, shown in school.photos:
            probe = [vecs[r] for r, _ in shown]
            before = match_faces(probe, gallery, off, group_pupils=school.groups[group])
            after = match_faces(probe, gallery, on, group_pupils=school.groups[group])
            for (r, truth), m0, m1 in zip(shown, before, after, strict=True):
                if m0.kind is not MatchKind.MATCH or m0.pupil_id is None:
                    continue
                matched += m0.pupil_id == truth
                cos = 1.0 - float(m0.distance or 1.0)
                if m0.pupil_id not in school.groups[group]:
                    cos += on.sface_outside_group_similarity - lo  # undo the penalty
                if not lo <= cos < hi:
                    continue
                if m0.pupil_id == truth:
                    own[m1.kind.value] = own.get(m1.kind.value, 0) + 1
                else:
                    sims = sorted((float(vecs[r] @ vecs[e]) for e in school.enrol_rows[m0.pupil_id]), reverse=True)
                    who = "stranger" if truth is None else "another pupil"
                    lines.append(f"{who} {faces.names[r]} -> {school.pupils[m0.pupil_id].first_name}: templates"
                                 f" {' / '.join(f'{c:.3f}' for c in sims)} -> {m1.kind.value}")
    total = sum(own.values())
    return [f"pupils' own faces matched: {matched}; in the band [{lo:.2f}, {hi:.2f}): {total}"
            f" ({total / max(1, matched):.3f}), now " + ", ".join(f"{k} {v}" for k, v in sorted(own.items())),
            *lines]


def pair_report(faces: Faces) -> list[str]:
    """Every dev pupil's every 3-photo enrolment set against every photo of everyone else
    (impostors) and against the pupil's own photos outside the set (genuine): how far the best,
    second and third template reach, and which statistic separates the pupils' own faces in the
    two-photo band from the impostors that reach the match level."""
    from itertools import combinations

    vecs = faces.vectors["sface"]
    names = np.array(faces.names)
    sims = vecs @ vecs.T
    cfg = IdentifyConfig(template_engine="sface")
    lo, hi = cfg.sface_match_similarity, cfg.sface_single_photo_similarity
    rows_of: dict[str, list[int]] = {}
    for i, f in enumerate(faces.files):
        if f.startswith("pupils/"):
            rows_of.setdefault(names[i], []).append(i)
    imp, gen = [], []
    for name, rows in rows_of.items():
        if len(rows) <= ENROL:
            continue
        others = np.flatnonzero(names != name)
        for subset in combinations(rows, ENROL):
            imp.append(-np.sort(-sims[np.ix_(others, list(subset))], axis=1))
            gen += [-np.sort(-sims[q, list(subset)]) for q in rows if q not in subset]
    i_all, g_all = np.concatenate(imp), np.array(gen)
    pct = ", ".join(f"{100 * q:g} % {np.quantile(i_all, q):.3f}" for q in (0.999, 0.9999, 0.99999))
    reach = i_all[i_all[:, 0] >= lo]
    band = g_all[(g_all[:, 0] >= lo) & (g_all[:, 0] < hi)]
    need2 = cfg.sface_match_support_similarity
    out = [f"impostor template sets {len(i_all)}: one template's similarity {pct}, max {i_all.max():.3f};"
           f" reaching {lo:.2f}: {len(reach)} (best / 2nd / 3rd max {' / '.join(f'{v:.3f}' for v in reach.max(0))})",
           f"own faces x enrolment sets {len(g_all)}: best < {lo:.2f} {np.mean(g_all[:, 0] < lo):.3f},"
           f" in [{lo:.2f}, {hi:.2f}) {len(band) / len(g_all):.3f}, of those 2nd < {need2:.2f}:"
           f" {np.mean(band[:, 1] < need2):.2f}"]
    for label, stat in (("2nd", lambda a: a[:, 1]), ("mean of 2", lambda a: a[:, :2].mean(1)),
                        ("mean of 3", lambda a: a.mean(1)), ("3rd", lambda a: a[:, 2])):
        worst = float(stat(reach).max()) if len(reach) else float("nan")
        out.append(f"  {label}: impostors reaching {lo:.2f} up to {worst:.3f}; own faces in the band at or below"
                   f" that: {np.mean(stat(band) <= worst):.2f}")
    return out


CSV_COLUMNS = {"newsletter": "nieuwsbrief", "parro": "parro", "guide": "schoolgids", "website": "website",
               "social": "social_media", "face_matching": "gezichtsherkenning"}
TILE, GAP, COLS = 250, 40, 4


@dataclass
class PipeTally(Tally):
    missed: int = 0
    enrol_refused: int = 0
    hold_own: int = 0  # faces holding some channel: near their own pupil
    hold_other: int = 0  # ... near another pupil (the face is a pupil, enrolled or not)
    hold_stranger: int = 0  # ... a stranger's tile, or a background face
    cpu_s: float = 0.0
    wall_s: float = 0.0
    why: list[str] = field(default_factory=list)  # one line per face holding some channel (--why)


def _compose(path: Path, files: Sequence[Path]) -> list[tuple[float, float]]:
    from PIL import Image

    rows = (len(files) + COLS - 1) // COLS
    canvas = np.full((rows * (TILE + GAP) + GAP, COLS * (TILE + GAP) + GAP, 3), 128, np.uint8)
    centres = []
    for k, f in enumerate(files):
        r, c = divmod(k, COLS)
        y, x = GAP + r * (TILE + GAP), GAP + c * (TILE + GAP)
        canvas[y : y + TILE, x : x + TILE] = np.asarray(Image.open(f).convert("RGB").resize((TILE, TILE)))
        centres.append((x + TILE / 2, y + TILE / 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path, quality=92)
    return centres


def run_pipeline(school: School, faces: Faces, workdir: Path) -> PipeTally:
    """One school through the real pipeline (default configuration); see the module docstring."""
    import tempfile

    from photoguard.config import InboxFolder, load_settings
    from photoguard.core.records import PhotoStatus
    from photoguard.followup.enrol import enrol_photos
    from photoguard.ledger.consent import Registry, parse_csv
    from photoguard.photo.pipeline import Pipeline
    from photoguard.service.setup import init_root

    root = Path(tempfile.mkdtemp(prefix="school-", dir=workdir))
    init_root(root)
    settings = load_settings(root)
    folders = [InboxFolder(folder=f"groep{g}", group=g) for g in school.groups]
    settings = settings.model_copy(update={"service": settings.service.model_copy(update={"folders": folders})})
    pipe = Pipeline(root, settings, today=lambda: TODAY)
    lines = ["leerling_id,voornaam,achternaam,groep," + ",".join(CSV_COLUMNS.values())]
    for p in school.pupils.values():
        yes = ["ja" if p.consents_to(k) else "nee" for k in CSV_COLUMNS]
        lines.append(f"{p.pupil_id},Kind,X,{p.group}," + ",".join(yes))
    Registry(pipe.store).import_pupils(parse_csv("\n".join(lines) + "\n"), source="bench")
    t = PipeTally()
    probes = {r for _, shown in school.photos for r, _ in shown}
    enrolled: dict[str, int] = {}
    for pid, rows in school.enrol_rows.items():
        # a refused enrolment photo (a second face in it) is replaced by another of the pupil's
        # photos, as a school would take another one; never by a photo used in a class photo
        name = faces.names[rows[0]]
        spare = [i for i, n in enumerate(faces.names) if n == name and i not in rows and i not in probes]
        ok = 0
        for r in [*rows, *spare]:
            if ok == ENROL:
                break
            outcome = enrol_photos(pipe, pid, [DEV / faces.files[r]])[0]
            ok += outcome.ok
            t.enrol_refused += not outcome.ok
        enrolled[pid] = ok
    channels = settings.channels
    for k, (group, shown) in enumerate(school.photos):
        path = root / "inbox" / f"groep{group}" / f"klas_{k}.jpg"
        centres = _compose(path, [DEV / faces.files[r] for r, _ in shown])
        c0 = time.process_time()
        res = pipe.process_path(path)
        t.cpu_s += time.process_time() - c0
        t.wall_s += res.timings.get("total", 0.0)
        t.photos += 1
        tile_face: list[int | None] = []
        for cx, cy in centres:
            near = [i for i, f in enumerate(res.faces)
                    if abs(f.box.center[0] - cx) < 70 and abs(f.box.center[1] - cy) < 70]
            tile_face.append(max(near, key=lambda i: res.faces[i].box.area) if near else None)
        t.missed += sum(i is None for i in tile_face)
        background = [i for i in range(len(res.faces)) if i not in tile_face]
        # a second, overlapping box of a tile's face (most of it inside the tile face's box) is
        # that person, not a background face: judged with the tile's truth
        part_of: dict[int, str | None] = {}
        for i in background:
            box = res.faces[i].box
            for (_r, truth), j in zip(shown, tile_face, strict=True):
                if j is not None and box.intersection(res.faces[j].box) >= 0.5 * box.area:
                    part_of[i] = truth
        all_held = res.status is not PhotoStatus.PUBLISHED and not res.held_channels
        truth_of = {i: truth for (_r, truth), i in zip(shown, tile_face, strict=True) if i is not None}
        for i, f in enumerate(res.faces):
            if any(v.action is FaceAction.HOLD for v in f.verdicts.values()):
                who = truth_of.get(i)
                if who is None:
                    t.hold_stranger += 1
                    kind = "background" if i in background else "stranger"
                elif who == f.match.pupil_id:
                    t.hold_own += 1
                    kind = "own"
                else:
                    t.hold_other += 1
                    kind = f"other pupil {who} ({enrolled.get(who, 0)} templates)"
                cand = f.match.pupil_id or ""
                t.why.append(
                    f"photo {k} group {group}: {kind}, face {f.box.width:.0f} px, near {cand}"
                    f" ({'in' if cand in school.groups[group] else 'outside'} group,"
                    f" {enrolled.get(cand, 0)} templates),"
                    f" cos {1 - (f.match.distance or 1):.3f}, runner-up cos"
                    f" {1 - f.match.runner_up if f.match.runner_up is not None else float('nan'):.3f},"
                    f" holds {sorted(c for c, v in f.verdicts.items() if v.action is FaceAction.HOLD)}"
                )
        for ch in channels:
            t.outputs += 1
            held = all_held or ch.name in res.held_channels
            t.held += held
            for (_row, truth), i in zip(shown, tile_face, strict=True):
                face = res.faces[i] if i is not None else None
                visible = face is None or face.verdicts[ch.name].action is FaceAction.VISIBLE
                pupil = school.pupils.get(truth) if truth else None
                ok_here = pupil is not None and pupil.consents_to("face_matching") and pupil.consents_to(ch.consent)
                wrong = face is not None and face.match.pupil_id != truth
                if visible and (not ok_here or wrong):
                    t.leaks += 1
                    t.why.append(f"LEAK photo {k} group {group} {ch.name}:"
                                 f" {_describe(face, truth, group, school, enrolled)}")
                if ok_here:
                    t.consenting += 1
                    t.unattended += visible and face is not None and not held
            for i in background:
                face = res.faces[i]
                if face.verdicts[ch.name].action is not FaceAction.VISIBLE:
                    continue
                truth = part_of.get(i)
                pupil = school.pupils.get(truth) if truth else None
                ok_here = pupil is not None and pupil.consents_to("face_matching") and pupil.consents_to(ch.consent)
                if i in part_of and ok_here and face.match.pupil_id == truth:
                    t.why.append(f"photo {k} group {group} {ch.name}: a second box of {truth}'s face shown as"
                                 f" {truth} (not a leak), {_describe(face, truth, group, school, enrolled)}")
                    continue
                t.leaks += 1
                t.why.append(f"LEAK photo {k} group {group} {ch.name}: background"
                             f"{' (part of a tile face)' if i in part_of else ''}"
                             f" {_describe(face, truth, group, school, enrolled)}")
    pipe.store.close()
    return t


def _describe(face: Any, truth: str | None, group: str, school: School, enrolled: dict[str, int]) -> str:
    """A leaking face for ``--why``: who it is, whom it matched and how closely."""
    if face is None:
        return f"missed by the detector ({truth or 'stranger'})"
    m = face.match
    cand = m.pupil_id or ""
    where = "in" if cand in school.groups[group] else "outside"
    return (f"{truth or 'stranger'} shown as {cand} ({where} group, {enrolled.get(cand, 0)} templates),"
            f" face {face.box.width:.0f} px, cos {1 - (m.distance or 1):.3f}, runner-up cos"
            f" {1 - m.runner_up if m.runner_up is not None else float('nan'):.3f}")


def all_faces() -> Faces:
    """Every dev photo (no templates): the pipeline mode computes its own."""
    files = sorted(need(DEV / "pupils").glob("*/*")) + sorted(need(DEV / "strangers").glob("*/*"))
    keys = [str(f.relative_to(DEV)) for f in files]
    return Faces([Path(k).parent.name for k in keys], keys, {}, {})


def main_pipeline(seeds: int, photos: int, sizes: Sequence[int] = (30, 100, 113), why: bool = False) -> None:
    import shutil
    import tempfile

    faces = all_faces()
    print(f"{machine()}, {date.today().isoformat()}; pipeline level, default configuration")
    rows = []
    work = Path(tempfile.mkdtemp(prefix="pg-school-"))
    try:
        for size in sizes:
            total = PipeTally()
            enrolled = 0.0
            for s in range(seeds):
                school = build_school(faces, size, photos, np.random.default_rng(1000 * size + s))
                enrolled += len(school.enrol_rows) / seeds
                total.add(run_pipeline(school, faces, work))
            rows.append([
                str(size), f"{enrolled:.0f}", str(total.photos), str(total.enrol_refused), str(total.missed),
                str(total.leaks), f"{total.held / total.outputs:.3f}",
                f"{total.unattended / max(1, total.consenting):.3f}",
                f"{total.wall_s / total.photos:.2f}", f"{total.cpu_s / total.photos:.2f}",
                f"{total.hold_own} / {total.hold_other} / {total.hold_stranger}",
            ])
            print(" | ".join(rows[-1]), flush=True)
            if why:
                print("\n".join(f"  {line}" for line in total.why), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(md_table(["pupils", "enrolled", "photos", "enrolment photos refused", "faces missed", "leaks", "held",
                    "unattended utility", "s/photo", "CPU s/photo",
                    "faces holding: own pupil / other pupil / stranger"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="schools simulated per size")
    ap.add_argument("--photos", type=int, default=6, help="class photos per group")
    ap.add_argument("--pipeline", action="store_true", help="through the whole pipeline, default configuration")
    ap.add_argument("--why", action="store_true", help="with --pipeline: list every face that holds a channel")
    ap.add_argument("--band", action="store_true",
                    help="identify level: list who falls in the two-photo band for matches and what becomes of them")
    ap.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 113], help="with --pipeline: school sizes")
    args = ap.parse_args()
    if args.pipeline:
        main_pipeline(args.seeds, args.photos, args.sizes, args.why)
        return
    faces = embed(["opencv", "sface"])
    print(f"{machine()}, {date.today().isoformat()}")
    print(f"{len(faces.names)} faces; templates per face, one at a time: "
          + ", ".join(f"{e} {m:.1f} ms" for e, m in faces.ms_per_face.items()))
    rows = []
    if args.band:
        print("pair level:\n  " + "\n  ".join(pair_report(faces)), flush=True)
    for size in (30, 100, 113):
        schools = [build_school(faces, size, args.photos, np.random.default_rng(1000 * size + s))
                   for s in range(args.seeds)]
        if args.band:
            print(f"{size} pupils, {args.seeds} schools: " + "\n  ".join(band_report(schools, faces)), flush=True)
            continue
        enrolled = sum(len(s.enrol_rows) for s in schools) / len(schools)
        for label, engine, extra, group_first in RULES:
            options = {k: v for k, v in extra.items() if k != "fallback"}
            cfg = IdentifyConfig(template_engine=engine, **options)  # type: ignore[arg-type]
            total = Tally()
            with band_fallback(str(extra["fallback"]) if "fallback" in extra else None):
                for s in schools:
                    total.add(run(s, faces, engine, cfg, group_first))
            rows.append([
                str(size), f"{enrolled:.0f}", label, str(total.photos), str(total.leaks),
                f"{total.held / total.outputs:.3f}", f"{total.unattended / max(1, total.consenting):.3f}",
                f"{total.ms_match / total.photos:.2f}",
            ])
            print(" | ".join(rows[-1]), flush=True)
    if args.band:
        return
    print()
    print(md_table(["pupils", "enrolled", "rule", "photos", "leaks", "held", "unattended utility",
                    "match ms/photo"], rows))


if __name__ == "__main__":
    main()

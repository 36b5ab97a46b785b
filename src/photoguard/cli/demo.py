"""``photoguard demo ROOT``: the main job on sample data, end to end, with nothing to prepare.

The sample photos are made at run time from two pictures that scikit-image ships: NASA's public
domain portrait of astronaut Eileen Collins and Lav Varshney's CC0 "cameraman". In the demo the
astronaut plays an enrolled pupil whose parents consented to the newsletter and Parro but not to
the website or social media; the cameraman plays a pupil without face-matching consent. The pupil
names are invented.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from photoguard.cli.exitcodes import EXIT_OK
from photoguard.config import load_settings
from photoguard.followup.enrol import enrol_photos
from photoguard.ledger.consent import import_csv
from photoguard.ledger.db import Store
from photoguard.photo.ingest import iter_inputs
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root

CONSENT_CSV = (
    "leerling_id;voornaam;tussenvoegsel;achternaam;groep;datum_uitschrijving;nieuwsbrief;parro;"
    "schoolgids;website;social_media;telefoon_klassenlijst;gezichtsherkenning\n"
    "1001;Emma;de;Vries;7;;ja;ja;ja;nee;nee;ja;ja\n"
    "1002;Daan;van der;Berg;7;;ja;ja;nee;nee;nee;nee;nee\n"
)


def _sample_images() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    astronaut = np.asarray(data.astronaut(), dtype=np.uint8)
    camera = np.asarray(data.camera(), dtype=np.uint8)
    return astronaut, np.stack([camera] * 3, axis=-1)


def build_samples(folder: Path) -> tuple[Path, list[Path]]:
    """Write the enrolment photo and the inbox photos; returns (enrol photo, inbox photos)."""
    astronaut, camera = _sample_images()
    folder.mkdir(parents=True, exist_ok=True)
    enrol = folder / "enrol_1001.jpg"
    # an enrolment photo provided for the purpose: a mirrored, tighter crop of the portrait
    Image.fromarray(astronaut[0:400, 50:450][:, ::-1]).save(enrol, quality=95)
    group = np.concatenate([astronaut, camera], axis=1)
    inbox = folder / "inbox" / "groep7"
    inbox.mkdir(parents=True, exist_ok=True)
    first = inbox / "schoolreis_Emma_de_Vries.jpg"
    Image.fromarray(group).save(first, quality=92)
    (first.with_suffix(".txt")).write_text(
        "Emma de Vries en Daan van der Berg op schoolreis naar de Efteling\n", encoding="utf-8"
    )
    second = inbox / "IMG_0042.png"
    Image.fromarray(camera).save(second)
    return enrol, [first, second]


def run_demo(root: Path) -> int:
    root = root.resolve()
    init_root(root)
    settings = load_settings(root)
    store = Store(root / settings.paths.state / "photoguard.sqlite3")
    csv_path = root / "consent-demo.csv"
    csv_path.write_text(CONSENT_CSV, encoding="utf-8")
    report = import_csv(store, csv_path)
    print(f"1. consent imported: {report.added} new, {report.unchanged} unchanged pupils (invented names)")
    pipe = Pipeline(root, settings, store=store)
    enrol_photo, photos = build_samples(root / "sample")
    outcomes = enrol_photos(pipe, "1001", [enrol_photo])
    print(f"2. enrolled pupil 1001 (face_matching consent): {outcomes[0].reason}")
    inbox = root / settings.paths.inbox / "groep7"
    inbox.mkdir(parents=True, exist_ok=True)
    for p in photos:
        target = inbox / p.name
        p.replace(target)
        side = p.with_suffix(".txt")
        if side.exists():
            side.replace(target.with_suffix(".txt"))
    print("3. processing the inbox:")
    for path in iter_inputs([root / settings.paths.inbox]):
        res = pipe.process_path(path, group="7")
        print(f"   {path.name}: {res.status.value}, {len(res.faces)} face(s) {res.reason}")
        for i, f in enumerate(res.faces):
            who = f.match.pupil_id if f.match.pupil_id and f.match.kind.value == "match" else "unknown"
            per = ", ".join(f"{ch}={v.action.value}" for ch, v in f.verdicts.items())
            print(f"     face {i + 1} ({who}): {per}")
        for _ch, out in sorted(res.outputs.items()):
            print(f"     -> {out}")
    print(f"4. results: {root / settings.paths.outbox} (one folder per channel); the audit trail:")
    from photoguard.ledger.audit import event_counts

    rows = event_counts(store)
    print("   " + json.dumps({r["event"]: r["n"] for r in rows}))
    return EXIT_OK

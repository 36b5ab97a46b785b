"""A school year, end to end on real folders and a real SQLite database: consent import,
publishing, a withdrawal, a leaver, the sweep and a re-import without changes.

The face detector and template model are fakes (as in test_pipeline.py): a face is "found"
wherever its painted, high-variance patch is still present, so redaction is visible in the
pixels and the self-check works.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photoguard.cli.app import main
from photoguard.config import Settings, load_settings
from photoguard.core.records import Box, PhotoStatus
from photoguard.followup.propagate import propagate_changes
from photoguard.followup.retention import Sweeper
from photoguard.followup.takedown import NameScrubber, list_takedowns, render_html
from photoguard.ledger.consent import Registry, import_csv
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root
from tests.support.models import FakeDetector, FakeTemplates, fake_vector

TODAY = date.today()
HEADER = (
    "leerling_id;voornaam;tussenvoegsel;achternaam;groep;datum_uitschrijving;telefoon;nieuwsbrief;"
    "parro;schoolgids;website;social_media;telefoon_klassenlijst;gezichtsherkenning\n"
)
EMMA = "1001;Emma;de;Vries;7;{left};0612345678;ja;ja;ja;{web};nee;ja;ja\n"
DAAN = "1002;Daan;van der;Berg;7;;0687654321;ja;ja;ja;ja;ja;nee;nee\n"
SAM = "1003;Sam;;Jansen;7;{left};0611111111;ja;ja;ja;ja;ja;nee;ja\n"

FACE_A = Box(40, 40, 120, 130)  # Emma (1001)
FACE_B = Box(200, 50, 280, 140)  # a stranger
FACE_C = Box(130, 100, 190, 170)  # Sam (1003)


# -- fakes -------------------------------------------------------------------------------------
_vec = fake_vector


def make_photo(path: Path, boxes: Sequence[Box], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((200, 320, 3), 120, dtype=np.uint8)
    for b in boxes:
        x1, y1, x2, y2 = b.as_ints()
        img[y1:y2, x1:x2] = rng.integers(0, 255, size=(y2 - y1, x2 - x1, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=95)
    return np.asarray(Image.open(path).convert("RGB"))


def face_visible(out: Path, box: Box, original: np.ndarray) -> bool:
    img = np.asarray(Image.open(out).convert("RGB"))
    x1, y1, x2, y2 = box.as_ints()
    diff = np.abs(img[y1:y2, x1:x2].astype(int) - original[y1:y2, x1:x2].astype(int)).mean()
    return float(diff) < 30


def csv_text(*, emma_web: str = "ja", sam_left: str = "") -> str:
    return HEADER + EMMA.format(left="", web=emma_web) + DAAN + SAM.format(left=sam_left)


class School:
    def __init__(self, root: Path, *, vault: bool = True) -> None:
        self.root = root
        init_root(root)
        if vault:
            cfg = root / "photoguard.toml"
            text = cfg.read_text(encoding="utf-8")
            assert 'action = "delete"' in text
            cfg.write_text(text.replace('action = "delete"', 'action = "vault"'), encoding="utf-8")
        self.settings: Settings = load_settings(root)
        self.day = TODAY
        self.pipe = Pipeline(
            root,
            self.settings,
            detector=FakeDetector([FACE_A, FACE_B, FACE_C]),  # type: ignore[arg-type]
            templates=FakeTemplates({FACE_A: _vec(1), FACE_B: _vec(2), FACE_C: _vec(3)}),  # type: ignore[arg-type]
            today=lambda: self.day,
        )
        self.store = self.pipe.store
        self.originals: dict[str, np.ndarray] = {}

    def import_csv(self, text: str, name: str = "export.csv") -> Any:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        report = import_csv(self.store, path)
        prop = propagate_changes(
            self.root,
            self.settings,
            self.store,
            report.changes,
            today=self.day,
            pipeline=self.factory,
        )
        return report, prop

    def factory(self) -> Pipeline:
        return self.pipe

    def enrol(self) -> None:
        vault = self.pipe.template_vault()
        vault.add("1001", _vec(1), "enrol-1001")
        vault.add("1003", _vec(3), "enrol-1003")

    def publish(self, name: str, boxes: Sequence[Box], seed: int) -> Any:
        src = self.root / "inbox" / "juf-anne" / name
        original = make_photo(src, boxes, seed)
        res = self.pipe.process_path(src, group="7")
        assert res.status is PhotoStatus.PUBLISHED, res.reason
        assert res.sha256
        self.originals[res.sha256] = original
        return res

    def sweep(self, day: date) -> Any:
        self.day = day
        return Sweeper(self.root, self.settings, self.store, today=day, pipeline=self.factory).run()

    def live(self, channel: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM outputs WHERE withdrawn_at IS NULL"
        if channel:
            return self.store.query(sql + " AND channel=? ORDER BY id", (channel,))
        return self.store.query(sql + " ORDER BY id")

    def snapshot(self) -> dict[str, Any]:
        files = {
            str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((self.root / "outbox").rglob("*"))
            if p.is_file()
        }
        return {
            "outputs": [tuple(r) for r in self.store.query("SELECT * FROM outputs ORDER BY id")],
            "takedowns": [
                tuple(r) for r in self.store.query("SELECT * FROM takedowns ORDER BY id")
            ],
            "files": files,
            "templates": self.store.query("SELECT COUNT(*) FROM templates")[0][0],
        }


@pytest.fixture
def school(tmp_path: Path) -> School:
    s = School(tmp_path / "school")
    report, _ = s.import_csv(csv_text())
    assert report.added == 3
    s.enrol()
    return s


def _visible(row: sqlite3.Row) -> list[str]:
    return list(json.loads(row["visible_pupils"]))


def test_school_year(school: School) -> None:
    s = school
    # -- autumn: photos are published --------------------------------------------------------
    p1 = s.publish("schoolreis_Emma.jpg", [FACE_A, FACE_B], seed=1)
    p2 = s.publish("gym.jpg", [FACE_A, FACE_C], seed=2)
    assert (
        set(p1.outputs) == set(p2.outputs) == {"newsletter", "parro", "guide", "website", "social"}
    )
    web = {r["source_sha256"]: r for r in s.live("website")}
    assert _visible(web[p1.sha256]) == ["1001"] and _visible(web[p2.sha256]) == ["1001", "1003"]
    assert (s.root / "vault" / f"{p1.sha256}.enc").is_file()
    before = s.snapshot()

    # -- winter: Emma's parents withdraw website consent ---------------------------------------
    changes = Registry(s.store).set_consent("1001", "website", False, source="manual")
    prop = propagate_changes(s.root, s.settings, s.store, changes, today=s.day, pipeline=s.factory)
    assert {w.channel for w in prop.withdrawn} == {"website"} and len(prop.withdrawn) == 2
    for w in prop.withdrawn:
        assert not (s.root / w.path).exists(), "withdrawn file must be gone in the same run"
        assert w.replacement and w.replacement != w.path
        new = s.root / w.replacement
        assert new.is_file()
        original = s.originals[w.source_sha256]
        assert not face_visible(new, FACE_A, original), "Emma must be redacted in the replacement"
        if w.source_sha256 == p1.sha256:
            assert not face_visible(new, FACE_B, original), "the stranger stays redacted"
    # Sam stays visible on the website in the re-rendered gym photo
    rep2 = next(w for w in prop.withdrawn if w.source_sha256 == p2.sha256)
    assert rep2.replacement
    assert face_visible(s.root / rep2.replacement, FACE_C, s.originals[p2.sha256])
    live_web = s.live("website")
    assert len(live_web) == 2 and all("1001" not in _visible(r) for r in live_web)
    # other channels untouched: same rows, same files; no duplicate outputs anywhere
    after = s.snapshot()
    for path, digest in before["files"].items():
        if not path.startswith("outbox/website/"):
            assert after["files"][path] == digest
    others = [r for r in before["outputs"] if r[2] != "website"]
    assert [
        r for r in after["outputs"] if r[2] != "website" and r[0] in {o[0] for o in others}
    ] == others
    per_source = s.store.query(
        "SELECT source_sha256, channel, COUNT(*) AS n FROM outputs WHERE withdrawn_at IS NULL "
        "GROUP BY source_sha256, channel"
    )
    assert len(per_source) == 10 and all(r["n"] == 1 for r in per_source)
    # the takedown list names both files, with pupil id, reason and replacement
    tds = list_takedowns(s.store, channel="website")
    assert {t.output_path for t in tds} == {w.path for w in prop.withdrawn}
    assert all(t.pupil_id == "1001" and "website" in t.reason and t.replacement_path for t in tds)
    assert list_takedowns(s.store, channel="parro") == []
    page = render_html(list_takedowns(s.store), NameScrubber.from_store(s.store))
    for name in ("Emma", "Vries", "Sam", "Jansen", "Daan", "Berg"):
        assert name.lower() not in page.lower()

    # -- spring: Sam will leave in ten days --------------------------------------------------
    leave = TODAY + timedelta(days=10)
    report, prop = s.import_csv(csv_text(emma_web="nee", sam_left=leave.isoformat()), "spring.csv")
    assert [c.key for c in report.changes] == ["left_on"]
    assert prop.templates_destroyed == {} and prop.withdrawn == []
    assert s.pipe.template_vault().count("1003") == 1, "future leave date: not yet"
    first = s.sweep(TODAY)
    assert first.outputs_withdrawn == 0 and not first.templates_destroyed
    secret = [
        bytes(r[0])
        for r in s.store.query(
            "SELECT wrapped_key FROM pupil_keys WHERE pupil_id='1003' "
            "UNION ALL SELECT blob FROM templates WHERE pupil_id='1003'"
        )
    ]
    assert len(secret) == 2
    parro_before = {r["id"]: r for r in s.live("parro")}

    # -- the leave date: the nightly sweep -----------------------------------------------------
    rep = s.sweep(leave)
    assert rep.templates_destroyed == {"1003": 1}
    assert rep.withdrawn_by_channel == {"parro": 1} and rep.outputs_replaced == 1
    assert s.pipe.template_vault().count("1003") == 0
    s.store.checkpoint()
    db_bytes = (s.root / "state" / "photoguard.sqlite3").read_bytes()
    wal = s.root / "state" / "photoguard.sqlite3-wal"
    wal_bytes = wal.read_bytes() if wal.exists() else b""
    for blob in secret:
        assert blob not in db_bytes and blob not in wal_bytes
    gone = [r for oid, r in parro_before.items() if "1003" in _visible(r)]
    assert len(gone) == 1 and not (s.root / gone[0]["path"]).exists()
    new_parro = [r for r in s.live("parro") if r["source_sha256"] == p2.sha256]
    assert len(new_parro) == 1 and _visible(new_parro[0]) == ["1001"]
    new_file = s.root / new_parro[0]["path"]
    assert not face_visible(new_file, FACE_C, s.originals[p2.sha256])
    assert face_visible(new_file, FACE_A, s.originals[p2.sha256]), "Emma keeps her Parro consent"
    # Sam's website/newsletter photos follow their own rule (leaver_other_days = 0: kept)
    assert any("1003" in _visible(r) for r in s.live("website"))
    assert [t.reason for t in list_takedowns(s.store, channel="parro")] == ["pupil left the school"]

    # -- a re-import with no change changes nothing --------------------------------------------
    snap = s.snapshot()
    report, prop = s.import_csv(csv_text(emma_web="nee", sam_left=leave.isoformat()), "again.csv")
    assert report.changes == [] and report.unchanged == 3
    assert prop.withdrawn == [] and prop.templates_destroyed == {}
    assert s.snapshot() == snap
    again = s.sweep(leave)
    assert not again.changed_anything
    assert s.snapshot() == snap

    # -- summer: the vault period ends; a year later the audit is pruned -----------------------
    later = s.sweep(leave + timedelta(days=s.settings.originals.vault_days + 1))
    assert later.vault_deleted == 2 and not list((s.root / "vault").glob("*.enc"))
    kinds = {r["kind"] for r in s.store.query("SELECT kind FROM deletion_log")}
    assert {"templates", "output", "original"} <= kinds
    year = s.sweep(leave + timedelta(days=s.settings.retention.audit_days + 2))
    assert year.audit_pruned > 0
    assert s.store.query("SELECT COUNT(*) FROM deletion_log")[0][0] >= 6, "deletion log is kept"
    log_text = json.dumps([dict(r) for r in s.store.query("SELECT * FROM deletion_log")])
    assert "Jansen" not in log_text and "Sam" not in log_text and "Emma" not in log_text


def test_leaver_today_is_handled_at_import(school: School) -> None:
    s = school
    s.publish("kamp.jpg", [FACE_C, FACE_B], seed=5)
    _, prop = s.import_csv(csv_text(sam_left=TODAY.isoformat()), "left.csv")
    assert prop.templates_destroyed == {"1003": 1}
    assert [w.channel for w in prop.withdrawn] == ["parro"]
    assert not (s.root / prop.withdrawn[0].path).exists()


def test_without_vault_the_output_is_withdrawn_only(tmp_path: Path) -> None:
    s = School(tmp_path / "novault", vault=False)
    s.import_csv(csv_text())
    s.enrol()
    res = s.publish("feest.jpg", [FACE_A], seed=7)
    caption = (s.root / res.outputs["website"]).with_name(
        Path(res.outputs["website"]).name + ".txt"
    )
    caption.write_text("feest\n", encoding="utf-8")
    changes = Registry(s.store).set_consent("1001", "website", False)
    prop = propagate_changes(s.root, s.settings, s.store, changes, today=s.day, pipeline=None)
    assert len(prop.withdrawn) == 1 and prop.withdrawn[0].replacement is None
    assert not (s.root / res.outputs["website"]).exists() and not caption.exists()
    assert s.live("website") == []
    assert (s.root / res.outputs["parro"]).exists()


def test_cli_consent_set_withdraws_and_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = School(tmp_path / "cli", vault=False)
    s.import_csv(csv_text())
    s.enrol()
    res = s.publish("IMG_0001.jpg", [FACE_A], seed=9)
    root = str(s.root)
    assert main(["--root", root, "consent", "set", "1001", "website=no"]) == 0
    out = capsys.readouterr().out
    assert "withdrew" in out and "takedown list" in out
    assert not (s.root / res.outputs["website"]).exists()
    assert main(["--root", root, "takedown", "list"]) == 0
    table = capsys.readouterr().out
    assert Path(res.outputs["website"]).name in table and "1001" in table
    assert main(["--root", root, "takedown", "list", "--channel", "parro", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip().count("\n") == 0  # header only
    assert (
        main(["--root", root, "takedown", "list", "--since", "2000-01-01", "--format", "html"]) == 0
    )
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and "Emma" not in page and "Vries" not in page
    assert main(["--root", root, "sweep", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs_withdrawn"] == 0

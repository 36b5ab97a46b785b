"""A reviewer's face decisions outlive the held photo: kept in the ledger (``face_decisions``) when
the approval publishes a vaulted photo (or the optional list confirms a face), applied by every
later render of that photo (a consent change, the optional list, the approval of a photo held
again), voided with the pupil's biometrics (face_matching withdrawn, left) and deleted with the
vault original. The consent rule still decides per channel, with the consent as it is now.

Fake models on real folders and SQLite: a face is "found" wherever its painted patch is still
textured, so what a file shows is read from its pixels."""

from __future__ import annotations

import io
import json
import os
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoguard.core.overrides import FaceOverride, OverrideKind
from photoguard.core.records import Box
from photoguard.followup.optional import OptionalReview
from photoguard.followup.propagate import PropagationReport, propagate_changes
from photoguard.followup.retention import Sweeper
from photoguard.followup.review import Review
from photoguard.ledger import decisions
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import SCHEMA_VERSION, Store
from photoguard.photo.pipeline import Pipeline
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector
from tests.support.photos import make_photo
from tests.support.school import CONSENT_COLUMNS, EMMA, consent_csv, import_consent, make_school

pytestmark = pytest.mark.timeout(120)

TODAY = date(2026, 11, 21)
FACE_C = Box(130, 100, 190, 170)  # Sam (1003): clear of FACE_A and FACE_B
#: Sam (1003): every channel, face matching yes
SAM = ("1003", "Sam", "", "Jansen", "7", "", "ja", "ja", "ja", "ja", "ja", "nee", "ja")
#: Lotte (1004): every channel, face matching yes
LOTTE = ("1004", "Lotte", "", "Bakker", "7", "", "ja", "ja", "ja", "ja", "ja", "nee", "ja")
EMMA_CHANNELS = ("newsletter", "parro", "guide")  # Emma consents there; not to website, social


class Photo:
    """One school with one photo that went through review: Emma's face (A) a near match, the
    third face (C) Sam's, matched; B a blob (``lotte``: Lotte's face, a near match too)."""

    def __init__(self, tmp_path: Path, *, lotte: bool = False, vault: bool = True) -> None:
        self.day = TODAY
        templates = {FACE_A: fake_vector(1) + fake_vector(7), FACE_B: fake_vector(2), FACE_C: fake_vector(3)}
        enrol = {"1001": fake_vector(1), "1003": fake_vector(3)}
        if lotte:
            templates[FACE_B] = fake_vector(4) + fake_vector(8)
            enrol["1004"] = fake_vector(4)
        self.root, self.pipe = make_school(
            tmp_path,
            consent=consent_csv([EMMA, SAM, LOTTE], CONSENT_COLUMNS),
            detector=FakeDetector([FACE_A, FACE_B, FACE_C]),
            templates=FakeTemplates(templates),
            today=lambda: self.day,
            enrol=enrol,
            config={"action": '"vault"'} if vault else {},
        )
        self.store = self.pipe.store
        self.review = Review(self.root, self.pipe.settings, self.store, self.pipe)
        res = self.pipe.process_path(
            make_photo(self.root / "inbox" / "juf-anne" / "kamp.jpg", (FACE_A, FACE_B, FACE_C), seed=5),
            uploader="juf-anne",
        )
        assert res.status.value == "held" and res.quarantine_id and res.sha256
        everywhere = [c.name for c in self.pipe.settings.channels]  # Lotte consents to every channel
        assert sorted(res.held_channels) == sorted(everywhere if lotte else EMMA_CHANNELS)
        self.qid, self.sha = res.quarantine_id, res.sha256

    def factory(self) -> Pipeline:
        return self.pipe

    def change(self, pupil_id: str, key: str, value: bool) -> PropagationReport:
        changes = Registry(self.store).set_consent(pupil_id, key, value, source="test")
        assert changes
        return propagate_changes(
            self.root, self.pipe.settings, self.store, changes, today=self.day, pipeline=self.factory
        )

    def live(self) -> dict[str, tuple[list[str], set[Box]]]:
        """channel -> (visible pupils in the ledger, faces still textured in the file)."""
        rows = self.store.query(
            "SELECT channel, path, visible_pupils FROM outputs WHERE source_sha256=? AND withdrawn_at IS NULL",
            (self.sha,),
        )
        return {
            str(r["channel"]): (sorted(json.loads(r["visible_pupils"])), _faces(self.root / r["path"])) for r in rows
        }

    def kept(self) -> list[tuple[str, str | None, int | None]]:
        return [(k.decision.kind.value, k.decision.pupil_id, k.account) for k in decisions.kept(self.store, self.sha)]

    def held_items(self) -> list[sqlite3.Row]:
        return self.store.query("SELECT * FROM quarantine WHERE sha256=? AND resolved_at IS NULL", (self.sha,))


def _faces(path: Path) -> set[Box]:
    img = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
    return {d.box for d in FakeDetector([FACE_A, FACE_B, FACE_C]).detect(img)}


def _confirmed_and_approved(tmp_path: Path) -> Photo:
    p = Photo(tmp_path)
    p.review.decide(p.qid, 1, OverrideKind.CONFIRM, "1001", account=7)
    p.review.decide(p.qid, 2, OverrideKind.NOT_A_FACE, account=7)
    res = p.review.approve(p.qid)
    assert res.status.value == "published"
    assert (p.root / "vault" / f"{p.sha}.enc").is_file()
    assert not (p.root / "quarantine" / p.qid).exists()  # the held photo (and decisions.json) is gone
    for ch in EMMA_CHANNELS:
        assert p.live()[ch] == (["1001", "1003"], {FACE_A, FACE_B, FACE_C}), ch
    return p


def test_the_approval_keeps_the_applied_decisions_with_ids_only(tmp_path: Path) -> None:
    p = _confirmed_and_approved(tmp_path)
    assert p.kept() == [("confirm", "1001", 7), ("not_a_face", None, 7)]
    rows = p.store.query("SELECT * FROM face_decisions")
    assert {tuple(json.loads(r["box"])) for r in rows} == {tuple(FACE_A.to_list()), tuple(FACE_B.to_list())}
    assert all(r["sha256"] == p.sha and r["decided_at"] for r in rows)
    dump = json.dumps([dict(r) for r in rows])
    assert "Emma" not in dump and "Vries" not in dump


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "without-kept-decisions"])
def test_another_pupils_consent_change_rerenders_and_emma_stays_visible(tmp_path: Path, kept: bool) -> None:
    """Sam withdraws the newsletter: the newsletter file is rendered again from the vault. With
    the kept decisions Emma stays visible and the blob unfilled, nothing is held; without them
    (the control) the re-render holds the photo for a second look, as it did before."""
    p = _confirmed_and_approved(tmp_path)
    if not kept:
        p.store.execute("DELETE FROM face_decisions")
    report = p.change("1003", "newsletter", False)
    [w] = report.withdrawn
    assert w.channel == "newsletter" and w.pupil_ids == ["1003"]
    if kept:
        assert report.held_for_review == [] and p.held_items() == []
        assert w.replacement
        assert p.live()["newsletter"] == (["1001"], {FACE_A, FACE_B})  # Sam covered, Emma shown, no fill on B
    else:
        assert report.held_for_review == [p.sha] and len(p.held_items()) == 1
        assert "newsletter" not in p.live()
    for ch in ("parro", "guide"):  # untouched
        assert p.live()[ch] == (["1001", "1003"], {FACE_A, FACE_B, FACE_C}), ch


def test_emmas_own_withdrawal_covers_her_there_and_keeps_the_rest(tmp_path: Path) -> None:
    p = _confirmed_and_approved(tmp_path)
    report = p.change("1001", "parro", False)
    [w] = report.withdrawn
    assert w.channel == "parro" and report.held_for_review == []
    assert p.live()["parro"] == (["1003"], {FACE_B, FACE_C})  # confirmed, but no consent for parro now
    assert p.kept() == [("confirm", "1001", 7), ("not_a_face", None, 7)]  # a channel consent voids nothing
    # a later re-render of another channel still shows her where she has consent
    report = p.change("1003", "guide", False)
    assert report.held_for_review == []
    assert p.live()["guide"] == (["1001"], {FACE_A, FACE_B})


def test_withdrawn_face_matching_voids_her_confirmations_and_a_rerender_covers_her(tmp_path: Path) -> None:
    p = _confirmed_and_approved(tmp_path)
    report = p.change("1001", "face_matching", False)
    assert report.withdrawn == []  # face matching alone withdraws no published file
    assert report.decisions_forgotten == {"1001": 1}
    assert "deleted 1 kept face decision(s) about pupil 1001" in report.lines()
    assert p.kept() == [("not_a_face", None, 7)]  # the blob's mark names nobody: it stays with the photo
    log = p.store.query("SELECT ref, sha256, reason FROM deletion_log WHERE kind='face_decisions'")
    assert [(r["ref"], r["sha256"]) for r in log] == [("1001", None)]
    assert "face_matching consent withdrawn" in str(log[0]["reason"])
    # Sam's withdrawal re-renders the guide: Emma is no longer recognised (her templates are gone
    # too), so she is covered, and not held for review either; the blob stays unfilled
    report = p.change("1003", "guide", False)
    assert report.held_for_review == []
    assert p.live()["guide"] == ([], {FACE_B})


def test_a_pupil_who_leaves_loses_her_confirmations_in_the_sweep_on_the_day(tmp_path: Path) -> None:
    p = _confirmed_and_approved(tmp_path)
    leave = TODAY + timedelta(days=10)
    rows = [(*EMMA[:5], leave.strftime("%d-%m-%Y"), *EMMA[6:]), SAM, LOTTE]
    report = import_consent(p.store, p.root / "c2.csv", consent_csv(rows, CONSENT_COLUMNS))
    prop = propagate_changes(p.root, p.pipe.settings, p.store, report.changes, today=p.day, pipeline=p.factory)
    assert prop.decisions_forgotten == {}  # still at school
    assert p.kept()[0] == ("confirm", "1001", 7)
    p.day = leave
    rep = Sweeper(p.root, p.pipe.settings, p.store, today=leave, pipeline=p.factory).run()
    assert rep.decisions_deleted == 1
    assert p.kept() == [("not_a_face", None, 7)]
    assert "  kept face decisions deleted: 1" in rep.lines()
    assert Sweeper(p.root, p.pipe.settings, p.store, today=leave, pipeline=p.factory).run().decisions_deleted == 0


def test_the_decisions_go_with_the_vault_original(tmp_path: Path) -> None:
    p = _confirmed_and_approved(tmp_path)
    days = p.pipe.settings.originals.vault_days
    later = TODAY + timedelta(days=days + 1)
    vaulted = datetime.combine(TODAY, time(9), UTC).timestamp()  # the sweep ages the file by its mtime
    os.utime(p.root / "vault" / f"{p.sha}.enc", (vaulted, vaulted))
    p.day = later
    early = Sweeper(p.root, p.pipe.settings, p.store, today=TODAY, pipeline=p.factory).run()
    assert early.decisions_deleted == 0 and len(p.kept()) == 2
    rep = Sweeper(p.root, p.pipe.settings, p.store, today=later, pipeline=p.factory).run()
    assert rep.vault_deleted == 1 and rep.decisions_deleted == 2
    assert p.kept() == [] and p.store.query("SELECT * FROM face_decisions") == []
    [row] = p.store.query("SELECT ref, sha256 FROM deletion_log WHERE kind='face_decisions'")
    assert (row["ref"], row["sha256"]) == (p.sha, p.sha)


def test_decisions_are_not_kept_without_a_vaulted_original(tmp_path: Path) -> None:
    p = Photo(tmp_path, vault=False)
    p.review.decide(p.qid, 1, OverrideKind.CONFIRM, "1001", account=7)
    assert p.review.approve(p.qid).status.value == "published"
    assert not (p.root / "vault" / f"{p.sha}.enc").exists()
    assert p.store.query("SELECT * FROM face_decisions") == []


def test_an_optional_confirmation_is_kept_for_later_renders(tmp_path: Path) -> None:
    """Approved without a confirmation: Emma covered, on the optional list; confirmed there, the
    photo is rendered again and the confirmation kept; Sam's later withdrawal keeps her shown."""
    p = Photo(tmp_path)
    assert p.review.approve(p.qid).status.value == "published"
    assert p.live()["newsletter"] == (["1003"], {FACE_C})
    opt = OptionalReview(p.root, p.pipe.settings, p.store, p.pipe)
    [photo] = opt.photos()
    [face] = photo.faces
    assert face.pupil_id == "1001" and face.box == FACE_A
    opt.confirm(p.sha, FACE_A, "1001", account=5)
    assert p.kept() == [("confirm", "1001", 5)]
    assert p.live()["newsletter"][0] == ["1001", "1003"]
    report = p.change("1003", "newsletter", False)
    assert report.held_for_review == []
    assert p.live()["newsletter"][0] == ["1001"] and FACE_A in p.live()["newsletter"][1]


def test_the_approval_of_a_photo_held_again_starts_from_the_kept_decisions(tmp_path: Path) -> None:
    """Emma confirmed, Lotte's near match left open (covered on approval). Sam's withdrawal
    re-renders the newsletter: Lotte holds it again, Emma does not; the review page shows Emma
    as confirmed, and the approval publishes her."""
    p = Photo(tmp_path, lotte=True)
    p.review.decide(p.qid, 1, OverrideKind.CONFIRM, "1001", account=7)
    assert p.review.approve(p.qid).status.value == "published"
    assert p.kept() == [("confirm", "1001", 7)]
    assert p.live()["newsletter"][0] == ["1001", "1003"]
    report = p.change("1003", "newsletter", False)
    assert report.held_for_review == [p.sha]
    [held] = p.held_items()
    item = p.review.get(str(held["id"]))
    assert item.held_channels == ["newsletter"]
    assert item.faces[0]["reviewed"] == "confirm" and item.faces[0]["decision"]["newsletter"] == "visible"
    assert item.faces[1]["match"] == "near" and item.faces[1]["candidate"] == "1004"
    p.review.decide(item.id, 2, OverrideKind.STRANGER, account=8)  # not Lotte after all
    assert p.review.approve(item.id).status.value == "published"
    assert p.live()["newsletter"] == (["1001"], {FACE_A})
    assert p.kept() == [("confirm", "1001", 7), ("stranger", "1004", 8)]


def test_the_decision_table_arrives_by_migration_in_a_version_5_database(tmp_path: Path) -> None:
    p = _confirmed_and_approved(tmp_path)
    path = p.root / "state" / "photoguard.sqlite3"
    with p.store.transaction() as conn:
        conn.execute("DROP TABLE face_decisions")
    p.store.execute("PRAGMA user_version=5")
    p.store.close()
    store = Store(path)
    try:
        assert store.one("PRAGMA user_version")[0] == SCHEMA_VERSION == 6  # type: ignore[index]
        assert decisions.kept(store, p.sha) == []
        confirm = FaceOverride(FACE_A, OverrideKind.CONFIRM, "1001")
        with store.transaction() as conn:
            assert decisions.record_in(conn, p.sha, [decisions.Kept(confirm, 3, "2026-11-21T10:00:00Z")]) == 1
        assert [(k.decision.pupil_id, k.account) for k in decisions.kept(store, p.sha)] == [("1001", 3)]
    finally:
        store.close()

"""Which engine made each stored template, the schema migration that records it, and a school that
switches ``identify.template_engine``: the old templates are left out of the gallery (their
pupils are redacted, never shown), the log says how many pupils to enrol again, and enrolling the
same photos again with the new engine brings them back."""

from __future__ import annotations

import logging
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from photoguard.core.records import FaceAction, MatchKind, PhotoStatus
from photoguard.ledger import keys
from photoguard.ledger.consent import Registry, parse_csv
from photoguard.ledger.db import SCHEMA_VERSION, Store
from photoguard.ledger.templates import EnrolmentRefused, TemplateVault, template_family
from tests.support.models import FACE_A, FACE_B, FakeTemplates, fake_vector
from tests.support.photos import make_photo
from tests.support.school import consent_csv, make_school

TODAY = date(2026, 11, 21)
CSV = consent_csv([("a", "Emma", "Vries", "ja"), ("b", "Daan", "Berg", "ja")],
                  ("leerling_id", "voornaam", "achternaam", "gezichtsherkenning"), sep=",")


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def vault(tmp_path: Path) -> TemplateVault:
    store = Store(tmp_path / "db.sqlite3", create=True)
    Registry(store).import_pupils(parse_csv(CSV), source="t")
    return TemplateVault(store, keys.load_master(tmp_path / "k.key", create=True))


@pytest.mark.parametrize(("engine", "family"), [("opencv", "dlib"), ("dlib", "dlib"), ("sface", "sface")])
def test_engine_family(engine: str, family: str) -> None:
    assert template_family(engine) == family


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError):
        template_family("facenet")


def test_gallery_holds_only_the_configured_family(vault: TemplateVault) -> None:
    vault.add("a", fake_vector(1), "sha-1", "opencv")
    vault.add("a", _unit(1), "sha-1", "sface")  # the same photo, enrolled again with sface: kept apart
    vault.add("b", _unit(2), "sha-2", "sface")
    rows = vault.store.query("SELECT pupil_id, engine FROM templates ORDER BY id")
    assert [(r["pupil_id"], r["engine"]) for r in rows] == [("a", "dlib"), ("a", "sface"), ("b", "sface")]
    dlib, missing_dlib = vault.gallery_for("dlib", TODAY)
    sface, missing_sface = vault.gallery_for("sface", TODAY)
    assert dlib.pupil_ids == ("a",) and missing_dlib == 1  # b has sface templates only
    np.testing.assert_array_equal(dlib.vectors[0], fake_vector(1))
    assert sface.pupil_ids == ("a", "b") and missing_sface == 0
    assert vault.gallery(TODAY, "sface").pupil_ids == ("a", "b")


@pytest.mark.parametrize(("vector", "engine"), [(_unit(3), "opencv"), (fake_vector(3), "sface")])
def test_a_template_of_the_other_family_is_refused(vault: TemplateVault, vector: np.ndarray, engine: str) -> None:
    with pytest.raises(EnrolmentRefused, match="engine"):
        vault.add("a", vector, "sha-3", engine)
    assert vault.count() == 0


def test_version_1_database_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE templates (id INTEGER PRIMARY KEY AUTOINCREMENT, pupil_id TEXT NOT NULL,"
        " photo_sha256 TEXT NOT NULL, blob BLOB NOT NULL, created_at TEXT NOT NULL);"
        "INSERT INTO templates(pupil_id, photo_sha256, blob, created_at) VALUES('a', 's', x'00', '2026-01-01');"
        "PRAGMA user_version=1;"
    )
    conn.commit()
    conn.close()
    store = Store(db)
    assert [r["engine"] for r in store.query("SELECT engine FROM templates")] == ["dlib"]
    assert store.one("PRAGMA user_version")[0] == SCHEMA_VERSION  # type: ignore[index]
    store.close()
    Store(db).close()  # opening again changes nothing


def test_legacy_unit_norm_row_counts_as_sface(vault: TemplateVault) -> None:
    """Schema version 1 with the sface engine (phase one of issue 12) stored sface templates
    without a family: the column says "dlib", the vector says sface."""
    vault.add("a", _unit(5), "sha-5", "sface")
    vault.store.execute("UPDATE templates SET engine='dlib'")
    assert vault.gallery(TODAY, "sface").pupil_ids == ("a",)
    assert vault.gallery(TODAY, "opencv").pupil_ids == ()


def test_switching_engines_redacts_until_enrolled_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # enrolled with the dlib family (make_school's default); the school then switches to sface
    templates = FakeTemplates({FACE_A: _unit(1), FACE_B: _unit(2)})
    root, pipe = make_school(tmp_path, templates=templates, config={"template_engine": '"sface"'})
    assert pipe.settings.identify.template_engine == "sface"
    with caplog.at_level(logging.WARNING, logger="photoguard.photo.pipeline"):
        res = pipe.process_path(make_photo(root / "inbox" / "juf-anne" / "IMG_1.jpg", seed=1))
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    emma = next(f for f in res.faces if f.box == FACE_A)
    assert emma.match.kind is MatchKind.NONE
    assert all(v.action is FaceAction.REDACT for v in emma.verdicts.values())
    assert "1 enrolled pupil(s) have no face template of the configured engine" in caplog.text
    assert "photoguard enrol --dir" in caplog.text
    # enrolled again (same enrolment photo, new engine): recognised, and the log line is not repeated
    assert pipe.template_vault().add("1001", _unit(1), "enrol-photo-sha", "sface") is True
    caplog.clear()
    res = pipe.process_path(make_photo(root / "inbox" / "juf-anne" / "IMG_2.jpg", seed=2))
    emma = next(f for f in res.faces if f.box == FACE_A)
    assert emma.match.kind is MatchKind.MATCH and emma.match.pupil_id == "1001"
    assert emma.verdicts["newsletter"].action is FaceAction.VISIBLE
    assert "no face template" not in caplog.text

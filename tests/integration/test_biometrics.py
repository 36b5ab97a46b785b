from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from cryptography.fernet import InvalidToken

from photoguard.ledger import keys
from photoguard.ledger.consent import Registry, parse_csv
from photoguard.ledger.db import Store
from photoguard.ledger.templates import EnrolmentRefused, TemplateVault
from tests.support.school import consent_csv

CSV = consent_csv(
    [("a", "Emma", "Vries", "", "ja"), ("b", "Daan", "Berg", "", "nee"), ("c", "Ana", "Smit", "2026-01-01", "ja")],
    ("leerling_id", "voornaam", "achternaam", "datum_uitschrijving", "gezichtsherkenning"),
    sep=",",
)


@pytest.fixture
def vault(tmp_path: Path) -> TemplateVault:
    store = Store(tmp_path / "db.sqlite3", create=True)
    Registry(store).import_pupils(parse_csv(CSV), source="t")
    return TemplateVault(store, keys.load_master(tmp_path / "k.key", create=True))


def test_only_face_matching_consent_and_present_pupils(vault: TemplateVault) -> None:
    vault.may_enrol("a", date(2026, 11, 21))
    with pytest.raises(EnrolmentRefused, match="face_matching"):
        vault.may_enrol("b")
    with pytest.raises(EnrolmentRefused, match="left"):
        vault.may_enrol("c", date(2026, 11, 21))
    with pytest.raises(EnrolmentRefused, match="no pupil"):
        vault.may_enrol("zz")


def test_templates_encrypted_at_rest_and_gallery_round_trip(vault: TemplateVault, tmp_path: Path) -> None:
    v = np.linspace(-0.2, 0.2, 128).astype(np.float32)
    assert vault.add("a", v, "sha-1") is True
    assert vault.add("a", v, "sha-1") is False
    raw = (tmp_path / "db.sqlite3").read_bytes()
    assert v.tobytes() not in raw
    g = vault.gallery(date(2026, 11, 21))
    assert g.pupil_ids == ("a",)
    np.testing.assert_array_equal(g.vectors[0], v)


def test_withdrawn_consent_leaves_gallery_and_destroy_shreds(vault: TemplateVault, tmp_path: Path) -> None:
    v = np.ones(128, dtype=np.float32) * 0.01
    vault.add("a", v, "sha-1")
    wrapped = bytes(vault.store.one("SELECT wrapped_key FROM pupil_keys WHERE pupil_id='a'")["wrapped_key"])  # type: ignore[index]
    blob = bytes(vault.store.one("SELECT blob FROM templates WHERE pupil_id='a'")["blob"])  # type: ignore[index]
    Registry(vault.store).set_consent("a", "face_matching", False)
    assert vault.gallery(date(2026, 11, 21)).pupil_ids == ()
    assert vault.destroy("a", "consent withdrawn") == 1
    assert vault.count("a") == 0
    assert vault.store.one("SELECT 1 FROM pupil_keys WHERE pupil_id='a'") is None
    # even with the master key and a copy of the ciphertext, nothing is left to unwrap
    raw = (tmp_path / "db.sqlite3").read_bytes()
    assert wrapped not in raw and blob not in raw
    log = vault.store.query("SELECT kind, ref FROM deletion_log")
    assert [(r["kind"], r["ref"]) for r in log] == [("templates", "a")]


def test_wrong_master_key_cannot_decrypt(vault: TemplateVault, tmp_path: Path) -> None:
    vault.add("a", np.zeros(128, dtype=np.float32) + 0.1, "s")
    other = keys.load_master(tmp_path / "other.key", create=True)
    with pytest.raises((keys.KeyError_, InvalidToken)):
        TemplateVault(vault.store, other).gallery(date(2026, 11, 21))


def test_key_file_too_open_refused(tmp_path: Path) -> None:
    k = tmp_path / "k.key"
    keys.create_key_file(k)
    k.chmod(0o644)
    with pytest.raises(keys.KeyError_, match="chmod 600"):
        keys.load_master(k)

"""Nothing lingers (issue 13): a caption leaves the inbox with its photo (audited), an orphan
caption is swept, a late caption is paired, and the database keeps no pupil's name of a file."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from photoguard.core.records import PhotoStatus
from photoguard.followup.retention import Sweeper
from photoguard.followup.review import Review
from photoguard.ledger import ledger
from photoguard.photo.pipeline import Pipeline
from photoguard.service.watch import WatchService
from tests.support.models import FACE_A, FACE_B, FakeTemplates, fake_vector
from tests.support.photos import make_photo
from tests.support.school import held_original, make_school
from tests.support.threads import thread_guard, wait_for

pytestmark = pytest.mark.timeout(60)
CAPTION = "Schoolreis naar het bos\n"


@pytest.fixture
def school(tmp_path: Path) -> tuple[Path, Pipeline]:
    return make_school(tmp_path)


def _events(pipe: Pipeline, name: str) -> list[str]:
    return [str(r["photo_sha256"]) for r in pipe.store.query("SELECT photo_sha256 FROM audit WHERE event=?", (name,))]


def _nearly_emma(pipe: Pipeline) -> None:
    """Emma's face only nearly matches: held for review where she has consent."""
    pipe.templates = FakeTemplates({FACE_A: fake_vector(1) + fake_vector(7), FACE_B: fake_vector(2)})  # type: ignore[assignment]


def test_a_published_photos_caption_leaves_with_it(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    src = make_photo(root / "inbox" / "juf-anne" / "IMG_0001.jpg", seed=3)
    side = src.with_suffix(".txt")
    side.write_text(CAPTION, encoding="utf-8")
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert not src.exists() and not side.exists(), "the caption must leave the inbox with its photo"
    assert _events(pipe, "sidecar.removed") == [res.sha256]
    published = (root / res.outputs["parro"]).with_suffix(".jpg.txt")
    assert published.read_text(encoding="utf-8").strip() == CAPTION.strip()


def test_the_full_name_sidecar_form_leaves_too(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    src = make_photo(root / "inbox" / "juf-anne" / "IMG_0002.jpg", seed=4)
    side = src.with_name(src.name + ".txt")
    side.write_text(CAPTION, encoding="utf-8")
    assert pipe.process_path(src, group="7").status is PhotoStatus.PUBLISHED
    assert not side.exists()


def test_a_caption_shared_by_two_photos_stays_until_the_last_one_left(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    jpg = make_photo(root / "inbox" / "juf-anne" / "IMG_0003.jpg", seed=5)
    png = make_photo(root / "inbox" / "juf-anne" / "IMG_0003.png", seed=6)
    side = jpg.with_suffix(".txt")
    side.write_text(CAPTION, encoding="utf-8")
    assert pipe.process_path(jpg, group="7").status is PhotoStatus.PUBLISHED
    assert side.exists(), "the other photo still needs its caption"
    assert pipe.process_path(png, group="7").status is PhotoStatus.PUBLISHED
    assert not side.exists()


def test_a_held_photos_caption_goes_to_quarantine_and_is_published_on_approval(
    school: tuple[Path, Pipeline],
) -> None:
    root, pipe = school
    _nearly_emma(pipe)
    src = make_photo(root / "inbox" / "juf-anne" / "schoolreis.jpg", seed=7)
    side = src.with_suffix(".txt")
    side.write_text(CAPTION, encoding="utf-8")
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.HELD and res.quarantine_id
    assert not src.exists() and not side.exists()
    rv = Review(root, pipe.settings, pipe.store, pipe)
    assert rv.held_caption(res.quarantine_id) == CAPTION
    kept = root / "quarantine" / res.quarantine_id / "caption.txt.enc"
    assert b"Schoolreis" not in kept.read_bytes(), "the held caption is encrypted at rest"
    assert _events(pipe, "sidecar.quarantined") == [res.sha256]
    done = rv.approve(res.quarantine_id, "parro")
    out = root / done.outputs["parro"]
    assert out.with_name(out.name + ".txt").read_text(encoding="utf-8").strip() == CAPTION.strip()


def test_a_caption_that_changed_after_its_photo_was_read_stays(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    src = make_photo(root / "inbox" / "juf-anne" / "IMG_0004.jpg", seed=8)
    side = src.with_suffix(".txt")
    side.write_text(CAPTION, encoding="utf-8")
    real = pipe._process_bytes

    def edit_meanwhile(*a: object, **kw: object) -> object:
        side.write_text("Andere tekst\n", encoding="utf-8")
        return real(*a, **kw)  # type: ignore[arg-type]

    pipe._process_bytes = edit_meanwhile  # type: ignore[method-assign]
    assert pipe.process_path(src, group="7").status is PhotoStatus.PUBLISHED
    assert side.read_text(encoding="utf-8") == "Andere tekst\n", "a caption not yet read is not removed"
    assert _events(pipe, "sidecar.removed") == []


def _age(path: Path, days: float) -> None:
    t = time.time() - days * 86400
    os.utime(path, (t, t))


def test_the_sweep_removes_captions_without_a_photo_after_the_period(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    days = pipe.settings.retention.quarantine_days
    folder = root / "inbox" / "juf-anne"
    folder.mkdir(parents=True, exist_ok=True)
    old = folder / "Noor ter Horst 06-12345678.txt"
    old.write_text("Noor was ziek, bel 06-12345678", encoding="utf-8")
    _age(old, days + 1)
    fresh = folder / "IMG_9.txt"
    fresh.write_text(CAPTION, encoding="utf-8")
    _age(fresh, days - 1)
    paired = folder / "IMG_10.txt"
    paired.write_text(CAPTION, encoding="utf-8")
    photo = make_photo(folder / "IMG_10.jpg", seed=9)
    _age(paired, days + 5)
    _age(photo, days + 5)
    rep = Sweeper(root, pipe.settings, pipe.store, now=datetime.now(UTC)).run()
    assert rep.sidecars_deleted == 1
    assert not old.exists() and fresh.exists() and paired.exists() and photo.exists()
    row = pipe.store.one("SELECT * FROM deletion_log WHERE kind='caption'")
    assert row is not None and "Noor" not in str(dict(row)) and "12345678" not in str(dict(row))
    assert "  captions without a photo deleted from the inbox: 1" in rep.lines()
    again = Sweeper(root, pipe.settings, pipe.store, now=datetime.now(UTC) + timedelta(seconds=1)).run()
    assert again.sidecars_deleted == 0


def test_the_database_keeps_no_pupils_name_from_a_file_name(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    named = make_photo(root / "inbox" / "juf-anne" / "Schoolreis Emma de Vries.jpg", seed=10)
    res = pipe.process_path(named, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    row = ledger.photo(pipe.store, str(res.sha256))
    assert row is not None and row["stem"] == "schoolreis"
    plain = make_photo(root / "inbox" / "juf-anne" / "IMG_0005.jpg", seed=11)
    res2 = pipe.process_path(plain, group="7")
    row2 = ledger.photo(pipe.store, str(res2.sha256))
    assert row2 is not None and row2["stem"] == "IMG_0005"
    assert Path(res2.outputs["parro"]).name == "2026-11-21_groep-7_img-0005_1.jpg"
    pipe.store.checkpoint()
    for p in (root / "state").iterdir():
        if p.is_file() and "sqlite" in p.name:
            assert b"Schoolreis Emma" not in p.read_bytes()


def test_an_approved_photo_without_names_gets_todays_file_names(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    _nearly_emma(pipe)
    src = make_photo(root / "inbox" / "juf-anne" / "IMG_0006.jpg", seed=12)
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.HELD and res.quarantine_id
    done = Review(root, pipe.settings, pipe.store, pipe).approve(res.quarantine_id, "parro")
    assert Path(done.outputs["parro"]).name == "2026-11-21_groep-7_img-0006_1.jpg"


def test_the_service_pairs_a_caption_that_arrives_after_its_photo(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    settle = 0.4  # a photo without a caption waits 5 x settle = 2 s for one
    with thread_guard():
        svc = WatchService(root, pipe.settings, pipe, settle_seconds=settle, tick_seconds=0.05, min_free_bytes=0)
        svc.start()
        try:
            src = make_photo(root / "inbox" / "juf-anne" / "IMG_0007.jpg", seed=13)
            time.sleep(1.2)  # three settle periods: without the caption window it would be gone
            assert src.exists()
            src.with_suffix(".txt").write_text(CAPTION, encoding="utf-8")
            assert wait_for(lambda: not src.exists() and svc.counts.get("published") == 1, 20)
        finally:
            svc.stop()
    rows = pipe.store.query("SELECT path FROM outputs WHERE channel='parro'")
    out = root / str(rows[0]["path"])
    assert out.with_name(out.name + ".txt").read_text(encoding="utf-8").strip() == CAPTION.strip()
    assert not src.with_suffix(".txt").exists()


def test_held_originals_are_encrypted_at_rest_shown_approved_and_expired(
    school: tuple[Path, Pipeline], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from photoguard.cli.app import main

    root, pipe = school
    _nearly_emma(pipe)
    src = make_photo(root / "inbox" / "juf-anne" / "IMG_0008.jpg", seed=14)
    data = src.read_bytes()
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.HELD and res.quarantine_id
    qid = res.quarantine_id
    qdir = root / "quarantine" / qid
    assert sorted(p.name for p in qdir.iterdir()) == ["original.jpg.enc", "reason.json"]
    assert data[:64] not in (qdir / "original.jpg.enc").read_bytes() and not src.exists()
    assert held_original(root, qid) == data
    # a reviewer looks at it through an export, written 0600, never over an existing file
    out = tmp_path / "look.jpg"
    assert main(["--root", str(root), "review", "show", qid, "--export", str(out)]) == 0
    assert "encrypted at rest" in capsys.readouterr().out
    assert out.read_bytes() == data and (out.stat().st_mode & 0o777) == 0o600
    assert main(["--root", str(root), "review", "show", qid, "--export", str(out)]) == 1
    assert "review.export" in [r["event"] for r in pipe.store.query("SELECT event FROM audit")]
    # the quarantine period still ends it
    days = pipe.settings.retention.quarantine_days
    rep = Sweeper(root, pipe.settings, pipe.store, now=datetime.now(UTC) + timedelta(days=days + 1)).run()
    assert rep.quarantine_deleted == 1 and not qdir.exists()


def test_an_approval_decrypts_the_held_original(school: tuple[Path, Pipeline]) -> None:
    root, pipe = school
    _nearly_emma(pipe)
    src = make_photo(root / "inbox" / "juf-anne" / "IMG_0009.jpg", seed=15)
    res = pipe.process_path(src, group="7")
    assert res.quarantine_id
    done = Review(root, pipe.settings, pipe.store, pipe).approve(res.quarantine_id)
    assert done.status is PhotoStatus.PUBLISHED and set(done.outputs) == {"newsletter", "parro", "guide"}
    assert not (root / "quarantine" / res.quarantine_id).exists()

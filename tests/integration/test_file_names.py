"""Output file names: no first name of a pupil who may not be named in the channel (closed channels
included, and replacements made after a withdrawal); no names at all on public channels; never a
surname."""

from __future__ import annotations

from pathlib import Path

from photoguard.core.records import PhotoStatus
from photoguard.followup.propagate import propagate_changes
from photoguard.ledger.consent import Registry
from tests.support.models import FACE_A, fake_vector
from tests.support.photos import make_photo, photo_bytes
from tests.support.school import DAAN, EMMA, consent_csv, make_school

CHANNELS = ("newsletter", "parro", "guide", "website", "social")


def _row(pid: str, first: str, prefix: str, surname: str, *consents: str) -> tuple[str, ...]:
    """consents: newsletter, parro, schoolgids, website, social_media, telefoon, gezichtsherkenning"""
    return (pid, first, prefix, surname, "7", "", *consents)


def _names(outputs: dict[str, str]) -> dict[str, str]:
    return {ch: Path(rel).name for ch, rel in outputs.items()}


def test_first_name_only_where_the_pupil_may_be_named(tmp_path: Path) -> None:
    # Noor consents to parro only; Sem to nothing
    noor = _row("1003", "Noor", "ter", "Horst", "nee", "ja", "nee", "ja", "nee", "nee", "nee")
    sem = _row("1004", "Sem", "", "Yilmaz", "nee", "nee", "nee", "nee", "nee", "nee", "nee")
    _root, pipe = make_school(tmp_path, consent=consent_csv([EMMA, DAAN, noor, sem]))
    res = pipe.process_bytes(photo_bytes(seed=21), source="t.jpg", stem="tekening-noor_ter_Horst", group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    names = _names(res.outputs)
    assert "noor" in names["parro"], names
    for ch in ("newsletter", "guide", "website", "social"):  # website consent, but a public channel
        assert "noor" not in names[ch], (ch, names[ch])
    assert all("horst" not in n for n in names.values()), names
    res = pipe.process_bytes(photo_bytes(seed=22), source="s.jpg", stem="tekening-sem", group="7")
    assert all("sem" not in n.replace("2026", "") for n in _names(res.outputs).values())
    assert {n.split("_")[2] for n in _names(res.outputs).values()} == {"tekening"}


def test_closed_channel_names_follow_consent_through_process_path(tmp_path: Path) -> None:
    root, pipe = make_school(tmp_path)  # Emma: closed channels yes, website/social no
    src = make_photo(root / "inbox" / "juf-anne" / "Emma_de_Vries_en_Daan_verjaardag.jpg", seed=23)
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    names = _names(res.outputs)
    for ch in ("newsletter", "parro", "guide"):
        assert "_emma-en-daan-verjaardag_" in names[ch], names[ch]
    for ch in ("website", "social"):
        assert "_verjaardag_" in names[ch], names[ch]
    assert not any(w in n for n in names.values() for w in ("vries", "berg"))


def test_replacement_after_a_withdrawal_drops_the_first_name(tmp_path: Path) -> None:
    mo = _row("1005", "Mohammed", "", "El Amrani", "ja", "ja", "ja", "nee", "nee", "nee", "ja")
    root, pipe = make_school(
        tmp_path,
        consent=consent_csv([EMMA, DAAN, mo]),
        enrol={"1005": fake_vector(1)},  # FACE_A is Mohammed
        config={"action": '"vault"'},
    )
    src = make_photo(root / "inbox" / "juf-anne" / "musical-mohammed.jpg", [FACE_A], seed=24)
    res = pipe.process_path(src, group="7")
    assert res.status is PhotoStatus.PUBLISHED, res.reason
    assert "musical-mohammed" in _names(res.outputs)["newsletter"]
    changes = Registry(pipe.store).set_consent("1005", "newsletter", False)
    prop = propagate_changes(root, pipe.settings, pipe.store, changes, today=pipe.today(), pipeline=lambda: pipe)
    assert [w.channel for w in prop.withdrawn] == ["newsletter"]
    new = prop.withdrawn[0].replacement
    assert new is not None and (root / new).is_file()
    assert "mohammed" not in Path(new).name and "_musical_" in Path(new).name, new
    # the channels he still consents to keep his first name in new names too
    assert "musical-mohammed" in _names(res.outputs)["parro"]

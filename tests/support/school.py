"""One consent CSV helper and one school builder for the tests.

``consent_csv`` writes a school administration export (ParnasSys-style Dutch columns, ``;``
separated) from rows; a test that needs other columns, another separator or odd values passes
them. ``make_school`` builds a fresh school root with an injected fake detector and template
model, imports the consent CSV and enrols pupils' templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

import numpy as np

from photoguard.config import load_settings
from photoguard.ledger.consent import ImportReport, import_csv
from photoguard.ledger.db import Store
from photoguard.ledger.templates import TemplateVault
from photoguard.photo.pipeline import Pipeline
from photoguard.service.setup import init_root
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector
from tests.support.text import FakeTextFinder

#: every column of the Dutch export, in the export's order
CONSENT_COLUMNS: tuple[str, ...] = (
    "leerling_id",
    "voornaam",
    "tussenvoegsel",
    "achternaam",
    "groep",
    "datum_uitschrijving",
    "nieuwsbrief",
    "parro",
    "schoolgids",
    "website",
    "social_media",
    "telefoon_klassenlijst",
    "gezichtsherkenning",
)
#: Emma (1001): everything but website and social media; face matching yes
EMMA: tuple[str, ...] = ("1001", "Emma", "de", "Vries", "7", "", "ja", "ja", "ja", "nee", "nee", "ja", "ja")
#: Daan (1002): every channel but the class list; no face matching
DAAN: tuple[str, ...] = ("1002", "Daan", "van der", "Berg", "7", "", "ja", "ja", "ja", "ja", "ja", "nee", "nee")
#: the two-pupil class most tests use
TWO_PUPILS: tuple[tuple[str, ...], ...] = (EMMA, DAAN)
#: the same two pupils as a real export spells them: yes/no in many forms, a Dutch leave date
AS_EXPORTED: tuple[tuple[str, ...], ...] = (
    ("1001", "Emma", "de", "Vries", "7", "", "ja", "JA", "nee", "Ja", "n", "1", "ja"),
    ("1002", "Daan", "van der", "Berg", "7", "31-07-2026", "nee", "ja", "", "misschien", "TRUE", "0", "nee"),
)


def consent_csv(
    rows: Iterable[Sequence[str]] = TWO_PUPILS,
    columns: Sequence[str] = CONSENT_COLUMNS,
    *,
    sep: str = ";",
) -> str:
    """The export's text: a header line and one line per row, each ending in a newline."""
    lines = [sep.join(columns)]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row {row!r} has {len(row)} fields for {len(columns)} columns")
        lines.append(sep.join(row))
    return "".join(line + "\n" for line in lines)


def import_consent(store: Store, path: Path, text: str) -> ImportReport:
    """Write ``text`` to ``path`` and import it as the administration's export."""
    path.write_text(text, encoding="utf-8")
    return import_csv(store, path)


def edit_config(root: Path, **values: str) -> None:
    """Set top-level-looking ``key = value`` lines of the root's photoguard.toml; each key must
    occur exactly once (``value`` is TOML: ``action='"vault"'``, ``workers="2"``)."""
    cfg = root / "photoguard.toml"
    text = cfg.read_text(encoding="utf-8")
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", text)
        assert n == 1, f"{key} occurs {n} times in {cfg}"
    cfg.write_text(text, encoding="utf-8")


def init_school(root: Path, **config: str) -> Path:
    """``photoguard init`` at ``root`` with ``config`` edits (see :func:`edit_config`)."""
    init_root(root)
    if config:
        edit_config(root, **config)
    return root


def template_vault(pipe: Pipeline) -> TemplateVault:
    """The pipeline's template vault, opened with the school's master key from its key file."""
    return pipe.template_vault()


def make_school(
    tmp_path: Path,
    *,
    name: str = "school",
    consent: str | None = None,
    detector: object | None = None,
    templates: object | None = None,
    text: object | None = None,
    today: Callable[[], date] = lambda: date(2026, 11, 21),
    enrol: Mapping[str, np.ndarray] | None = None,
    enrol_source: str = "enrol-photo-sha",
    config: Mapping[str, str] | None = None,
) -> tuple[Path, Pipeline]:
    """A fresh school at ``tmp_path / name``.

    Defaults: the two-pupil CSV (:data:`TWO_PUPILS`), a :class:`FakeDetector` finding FACE_A and
    FACE_B, templates 1 and 2 for them, a :class:`FakeTextFinder` that finds no text, today
    2026-11-21, and pupil 1001 enrolled as FACE_A's template (``enrol={}`` enrols nobody;
    ``consent=""`` imports nothing). The fake templates are dlib-like (Euclidean distances, not
    unit length), so the school's ``template_engine`` is "opencv" unless ``config`` says otherwise.
    """
    root = init_school(tmp_path / name, **{"template_engine": '"opencv"', **(config or {})})
    pipe = Pipeline(
        root,
        load_settings(root),
        detector=FakeDetector([FACE_A, FACE_B]) if detector is None else detector,  # type: ignore[arg-type]
        templates=(
            FakeTemplates({FACE_A: fake_vector(1), FACE_B: fake_vector(2)}) if templates is None else templates
        ),  # type: ignore[arg-type]
        text=FakeTextFinder() if text is None else text,  # type: ignore[arg-type]
        today=today,
    )
    text = consent_csv() if consent is None else consent
    if text:
        import_consent(pipe.store, root / "c.csv", text)
    vault = template_vault(pipe)
    for pupil_id, vector in ({"1001": fake_vector(1)} if enrol is None else enrol).items():
        vault.add(pupil_id, vector, enrol_source)
    return root, pipe


def held_original(root: Path, qid: str) -> bytes:
    """The bytes of the held original in ``quarantine/<qid>/``, decrypted with the root's key file
    when it is encrypted at rest (``original.<ext>.enc``)."""
    from photoguard.ledger.keys import load_master

    qdir = root / "quarantine" / qid
    [original] = [p for p in qdir.iterdir() if p.name.startswith("original")]
    data = original.read_bytes()
    if original.name.endswith(".enc"):
        return load_master(root / "state" / "photoguard.key").decrypt(data)
    return data

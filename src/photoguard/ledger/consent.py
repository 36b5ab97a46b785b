"""The consent registry: CSV import (all-or-nothing, as a diff), single changes and history.

Opt-in only: a blank, unknown or unparsable answer means *no*. Every change of a consent value,
a pupil's group or leave date is a row in ``consent_history`` with time, source and version.

Provenance. Every consent value knows where it came from: its *kind* (``administration``: the
school administration's export; ``manual``: a paper or spoken change recorded with ``consent
set``; ``web``: a parent's web form, later), the source itself (``csv:<file>``, ``manual``) and
when. Beside it the registry keeps the administration's own answer at the last import
(``admin_value``), so an import can tell "the office changed this" from "the office has not caught
up with a change made elsewhere". An import

* changes a value only when the administration's own answer changed since the previous import
  (or the key is new): a paper change stays until the office changes its answer;
* applies a withdrawal from the administration always (a *no* never waits);
* never re-grants a value withdrawn by another source (manual, web). Each such case is a
  :class:`Conflict`, listed by pupil and key; the value stays *no*. The rest of the file is
  applied: holding back its withdrawals, leavers and new pupils until someone resolves a
  conflict would keep photos online that must come down. A person re-grants with ``consent set``
  or re-runs the import with ``accept_regrants`` (``consent import --accept-regrants``).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from photoguard.config import CONSENT_KEYS
from photoguard.core.records import Pupil
from photoguard.ledger import audit
from photoguard.ledger.db import AuditEvent, Store, iso, scrub_stems_in

#: header alias -> canonical field (Dutch as exported by the administration, or English)
HEADER_ALIASES: dict[str, str] = {
    "leerling_id": "pupil_id",
    "leerlingnummer": "pupil_id",
    "pupil_id": "pupil_id",
    "voornaam": "first_name",
    "first_name": "first_name",
    "tussenvoegsel": "surname_prefix",
    "surname_prefix": "surname_prefix",
    "achternaam": "surname",
    "surname": "surname",
    "groep": "group",
    "group": "group",
    "datum_uitschrijving": "left_on",
    "left_on": "left_on",
    "telefoon": "phone",
    "phone": "phone",
    "nieuwsbrief": "newsletter",
    "newsletter": "newsletter",
    "parro": "parro",
    "schoolgids": "guide",
    "guide": "guide",
    "website": "website",
    "social_media": "social",
    "social": "social",
    "telefoon_klassenlijst": "classlist_phone",
    "classlist_phone": "classlist_phone",
    "gezichtsherkenning": "face_matching",
    "face_matching": "face_matching",
}
REQUIRED = ("pupil_id", "first_name", "surname")

#: the kinds of consent source
KIND_ADMIN = "administration"
KIND_MANUAL = "manual"
KIND_WEB = "web"
KINDS = (KIND_ADMIN, KIND_MANUAL, KIND_WEB)
YES = frozenset({"ja", "yes", "j", "y", "1", "true", "waar"})
_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y")
_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class ConsentImportError(Exception):
    """The CSV was refused as a whole; ``problems`` holds 'line N: ...' messages."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))


def parse_yes(raw: str | None) -> bool:
    """Opt-in parsing: only an explicit yes counts; anything else (blank, 'misschien') is no."""
    return (raw or "").strip().lower() in YES


def parse_date(raw: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"unreadable date {raw!r} (use YYYY-MM-DD or DD-MM-YYYY)")


def _canonical_header(name: str) -> str | None:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return HEADER_ALIASES.get(key)


def parse_csv(text: str) -> list[Pupil]:
    """Parse a consent export. Raises ConsentImportError listing every bad row (nothing imported)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise ConsentImportError(["line 1: the file is empty"])
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ConsentImportError([f"line 1: unreadable header: {exc}"]) from None
    columns: list[str | None] = [_canonical_header(h) for h in header]
    problems: list[str] = []
    unknown = [h for h, c in zip(header, columns, strict=True) if c is None and h.strip()]
    if unknown:
        problems.append(f"line 1: unknown column(s): {', '.join(unknown)}")
    seen_cols = [c for c in columns if c]
    dupes = sorted({c for c in seen_cols if seen_cols.count(c) > 1})
    if dupes:
        problems.append(f"line 1: column(s) given twice: {', '.join(dupes)}")
    missing = [r for r in REQUIRED if r not in seen_cols]
    if missing:
        problems.append(f"line 1: missing required column(s): {', '.join(missing)}")
    if problems:
        raise ConsentImportError(problems)

    pupils: list[Pupil] = []
    ids: dict[str, int] = {}
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ConsentImportError([f"line {reader.line_num}: {exc}"]) from None
    for offset, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"line {offset}: expected {len(header)} fields, found {len(row)}")
            continue
        rec = {c: cell.strip() for c, cell in zip(columns, row, strict=True) if c}
        pid = rec.get("pupil_id", "")
        if not pid or not set(pid) <= _ID_OK or len(pid) > 64:
            problems.append(f"line {offset}: pupil id must be 1-64 letters, digits, '-', '_' or '.'")
            continue
        if pid in ids:
            problems.append(f"line {offset}: pupil id given twice (first on line {ids[pid]})")
            continue
        ids[pid] = offset
        if not rec.get("first_name") or not rec.get("surname"):
            problems.append(f"line {offset}: first name and surname are required")
            continue
        try:
            left_on = parse_date(rec.get("left_on", ""))
        except ValueError as exc:
            problems.append(f"line {offset}: {exc}")
            continue
        consents = {k: parse_yes(rec.get(k)) for k in CONSENT_KEYS}
        pupils.append(
            Pupil(
                pupil_id=pid,
                first_name=rec["first_name"],
                surname_prefix=rec.get("surname_prefix", ""),
                surname=rec["surname"],
                group=rec.get("group", ""),
                left_on=left_on,
                phone=rec.get("phone", ""),
                consents=consents,
            )
        )
    if problems:
        raise ConsentImportError(problems)
    return pupils


@dataclass(frozen=True, slots=True)
class Change:
    """One changed fact: a consent key ('newsletter', ...), or 'left_on' / 'group' / 'enrolled'."""

    pupil_id: str
    key: str
    old: object
    new: object

    @property
    def is_withdrawal(self) -> bool:
        return self.key in CONSENT_KEYS and self.old is True and self.new is False


@dataclass(frozen=True, slots=True)
class Conflict:
    """The administration says *yes* to ``key`` for ``pupil_id``, but the value is *no* by another
    source (``kind``/``source``, since ``since``): the import does not re-grant it."""

    pupil_id: str
    key: str
    kind: str
    source: str
    since: str

    def line(self) -> str:
        return (
            f"{self.pupil_id} {self.key}: the administration says yes; "
            f"withdrawn {self.since[:10] or '?'} ({self.kind}: {self.source})"
        )


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the current value of one consent key came from."""

    value: bool
    kind: str
    source: str
    since: str
    admin_value: bool | None

    def to_json(self) -> dict[str, object]:
        return {
            "value": self.value,
            "kind": self.kind,
            "source": self.source,
            "since": self.since,
            "administration": self.admin_value,
        }


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    missing_from_file: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    version: int = 0
    #: grants the administration asks for over a withdrawal by another source: not applied
    conflicts: list[Conflict] = field(default_factory=list)
    #: such grants applied because the import was run with ``accept_regrants``
    regrants_accepted: list[Conflict] = field(default_factory=list)


class Registry:
    """Read and change the consent registry in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading ---------------------------------------------------------------------------
    def pupils(self, pupil_ids: Iterable[str] | None = None) -> dict[str, Pupil]:
        """Every pupil in the registry (or only ``pupil_ids``; unknown ids are simply absent)."""
        if pupil_ids is None:
            rows = self.store.query("SELECT * FROM pupils")
            cons = self.store.query("SELECT pupil_id, key, value FROM consent")
        else:
            ids = json.dumps(sorted(set(pupil_ids)))
            rows = self.store.query(
                "SELECT * FROM pupils WHERE pupil_id IN (SELECT value FROM json_each(?))", (ids,)
            )
            cons = self.store.query(
                "SELECT pupil_id, key, value FROM consent "
                "WHERE pupil_id IN (SELECT value FROM json_each(?))",
                (ids,),
            )
        consent: dict[str, dict[str, bool]] = {}
        for r in cons:
            consent.setdefault(r["pupil_id"], {})[r["key"]] = bool(r["value"])
        return {r["pupil_id"]: _row_to_pupil(r, consent.get(r["pupil_id"], {})) for r in rows}

    def group_members(self, group: str) -> set[str]:
        """Ids of the registry's pupils in ``group`` (compared without case or surrounding
        spaces); empty for ''."""
        key = group.strip().casefold()
        if not key:
            return set()
        return {
            str(r["pupil_id"])
            for r in self.store.query("SELECT pupil_id, grp FROM pupils")
            if str(r["grp"]).strip().casefold() == key
        }

    def is_empty(self) -> bool:
        """No pupil was ever imported (a database fresh from ``init``)."""
        return not self.store.query("SELECT 1 FROM pupils LIMIT 1")

    def names(self) -> list[tuple[str, str, str]]:
        """(first name, surname prefix, surname) of every pupil, to scrub names from text."""
        return [
            (r["first_name"], r["surname_prefix"], r["surname"])
            for r in self.store.query("SELECT first_name, surname_prefix, surname FROM pupils")
        ]

    def confirmed_before(self, cutoff: str) -> list[sqlite3.Row]:
        """(pupil_id, grp, left_on, confirmed_at) of pupils last confirmed before ``cutoff``,
        by group, confirmation time and id."""
        return self.store.query(
            "SELECT pupil_id, grp, left_on, confirmed_at FROM pupils WHERE confirmed_at < ? "
            "ORDER BY grp, confirmed_at, pupil_id",
            (cutoff,),
        )

    def pupil(self, pupil_id: str) -> Pupil | None:
        r = self.store.one("SELECT * FROM pupils WHERE pupil_id=?", (pupil_id,))
        if r is None:
            return None
        cons = {
            c["key"]: bool(c["value"])
            for c in self.store.query("SELECT key, value FROM consent WHERE pupil_id=?", (pupil_id,))
        }
        return _row_to_pupil(r, cons)

    def history(self, pupil_id: str) -> list[sqlite3.Row]:
        return self.store.query(
            "SELECT at, key, old_value, new_value, source, version, kind FROM consent_history "
            "WHERE pupil_id=? ORDER BY id",
            (pupil_id,),
        )

    def provenance(self, pupil_id: str) -> dict[str, Provenance]:
        """Where each stored consent value of ``pupil_id`` came from (keys never stored are
        absent: they are *no* by opt-in)."""
        return {
            str(r["key"]): Provenance(
                bool(r["value"]),
                str(r["kind"]),
                str(r["source"]),
                str(r["set_at"] or ""),
                None if r["admin_value"] is None else bool(r["admin_value"]),
            )
            for r in self.store.query(
                "SELECT key, value, kind, source, set_at, admin_value FROM consent WHERE pupil_id=? ORDER BY key",
                (pupil_id,),
            )
        }

    def history_between(self, lo: str, hi: str) -> list[sqlite3.Row]:
        """Consent history rows with ``lo <= at < hi`` (ISO strings), oldest first."""
        return self.store.query(
            "SELECT at, pupil_id, key, old_value, new_value, source, version FROM consent_history "
            "WHERE at >= ? AND at < ? ORDER BY id",
            (lo, hi),
        )

    # -- writing ---------------------------------------------------------------------------
    def import_pupils(
        self, pupils: Sequence[Pupil], source: str, *, accept_regrants: bool = False
    ) -> ImportReport:
        """Apply a full export of the administration as a diff in one transaction; returns what
        changed and the grants it did not apply (see the module docstring)."""
        report = ImportReport()
        now = iso()
        with self.store.transaction() as conn:
            version = Store.consent_version_in(conn) + 1
            existing = {r["pupil_id"]: r for r in conn.execute("SELECT * FROM pupils")}
            old_consent: dict[str, dict[str, sqlite3.Row]] = {}
            for r in conn.execute("SELECT pupil_id, key, value, kind, source, set_at, admin_value FROM consent"):
                old_consent.setdefault(r["pupil_id"], {})[r["key"]] = r
            names_changed = False
            for p in pupils:
                old = existing.get(p.pupil_id)
                names_changed |= old is None or (old["first_name"], old["surname_prefix"], old["surname"]) != (
                    p.first_name,
                    p.surname_prefix,
                    p.surname,
                )
                applied = self._apply(conn, p, old, old_consent.get(p.pupil_id, {}), now, source, accept_regrants)
                if p.pupil_id not in existing:
                    report.added += 1
                elif applied.changes:
                    report.updated += 1
                else:
                    report.unchanged += 1
                    conn.execute("UPDATE pupils SET confirmed_at=? WHERE pupil_id=?", (now, p.pupil_id))
                report.changes.extend(applied.changes)
                report.conflicts.extend(applied.conflicts)
                report.regrants_accepted.extend(applied.regrants)
            report.missing_from_file = sorted(set(existing) - {p.pupil_id for p in pupils})
            if report.changes:
                accepted = {(c.pupil_id, c.key) for c in report.regrants_accepted}
                for ch in report.changes:
                    src = f"{source}; regrant accepted" if (ch.pupil_id, ch.key) in accepted else source
                    _history(conn, ch, now, src, version, KIND_ADMIN)
                Store.set_meta(conn, "consent_version", str(version))
                report.version = version
            else:
                report.version = version - 1
            if names_changed:
                scrub_stems_in(conn)  # a new or renamed pupil: no stored file stem may name them
            for c in report.conflicts:
                audit.record_in(
                    conn,
                    AuditEvent("consent.conflict", pupil_id=c.pupil_id, detail={"key": c.key, "kind": c.kind}),
                )
            audit.record_in(
                conn,
                AuditEvent(
                    "consent.import",
                    detail={
                        "added": report.added,
                        "updated": report.updated,
                        "unchanged": report.unchanged,
                        "changes": len(report.changes),
                        "version": report.version,
                        "conflicts": len(report.conflicts),
                        "regrants_accepted": len(report.regrants_accepted),
                    },
                ),
            )
        return report

    def set_consent(
        self, pupil_id: str, key: str, value: bool, source: str = "manual", *, kind: str = KIND_MANUAL
    ) -> list[Change]:
        """Record one value given by a person (``kind`` manual) or a parent's web form (web).

        The same value as before changes nothing in the history, but the value now belongs to
        ``kind``: a *no* confirmed on paper is not re-granted by the next import either."""
        if key not in CONSENT_KEYS:
            raise ValueError(f"unknown consent key {key!r}; expected one of {', '.join(CONSENT_KEYS)}")
        if kind not in KINDS:
            raise ValueError(f"unknown consent source kind {kind!r}")
        now = iso()
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM pupils WHERE pupil_id=?", (pupil_id,)).fetchone() is None:
                raise LookupError(f"no pupil with id {pupil_id!r}")
            row = conn.execute(
                "SELECT value, kind FROM consent WHERE pupil_id=? AND key=?", (pupil_id, key)
            ).fetchone()
            old = bool(row["value"]) if row else False
            if old == value:
                conn.execute("UPDATE pupils SET confirmed_at=? WHERE pupil_id=?", (now, pupil_id))
                if row is None or row["kind"] != kind:
                    _store_value(conn, pupil_id, key, value, kind, source, now)
                    audit.record_in(
                        conn,
                        AuditEvent("consent.confirmed", pupil_id=pupil_id, detail={"key": key, "kind": kind}),
                    )
                return []
            version = Store.consent_version_in(conn) + 1
            _store_value(conn, pupil_id, key, value, kind, source, now)
            conn.execute(
                "UPDATE pupils SET updated_at=?, confirmed_at=? WHERE pupil_id=?", (now, now, pupil_id)
            )
            ch = Change(pupil_id, key, old, value)
            _history(conn, ch, now, source, version, kind)
            Store.set_meta(conn, "consent_version", str(version))
            audit.record_in(
                conn,
                AuditEvent("consent.set", pupil_id=pupil_id, detail={"key": key, "value": value, "kind": kind}),
            )
        return [ch]

    def _apply(
        self,
        conn: sqlite3.Connection,
        p: Pupil,
        old: sqlite3.Row | None,
        old_consent: dict[str, sqlite3.Row],
        now: str,
        source: str,
        accept_regrants: bool,
    ) -> _Applied:
        out = _Applied()
        changes = out.changes
        left = p.left_on.isoformat() if p.left_on else None
        if old is None:
            conn.execute(
                "INSERT INTO pupils(pupil_id, first_name, surname_prefix, surname, grp, left_on, phone, "
                "confirmed_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?)",
                (p.pupil_id, p.first_name, p.surname_prefix, p.surname, p.group, left, p.phone, now, now),
            )
            changes.extend(Change(p.pupil_id, k, None, v) for k, v in p.consents.items() if v)
            if left:
                changes.append(Change(p.pupil_id, "left_on", None, left))
            for k, v in p.consents.items():
                _store_value(conn, p.pupil_id, k, v, KIND_ADMIN, source, now, admin_value=v)
            return out
        if old["left_on"] != left:
            changes.append(Change(p.pupil_id, "left_on", old["left_on"], left))
        if old["grp"] != p.group:
            changes.append(Change(p.pupil_id, "group", old["grp"], p.group))
        for k, admin in p.consents.items():
            cur = old_consent.get(k)
            if cur is None:  # a key this pupil never had: the administration's answer
                if admin:
                    changes.append(Change(p.pupil_id, k, False, True))
                _store_value(conn, p.pupil_id, k, admin, KIND_ADMIN, source, now, admin_value=admin)
                continue
            value = bool(cur["value"])
            admin_before = None if cur["admin_value"] is None else bool(cur["admin_value"])
            elsewhere = cur["kind"] != KIND_ADMIN
            if value == admin or (not admin and elsewhere and admin_before is False):
                # nothing to apply: the same answer, or a grant made elsewhere (a paper *yes*)
                # that the office has not recorded yet: its answer did not change
                if admin_before != admin:
                    _store_admin_value(conn, p.pupil_id, k, admin)
                continue
            if admin and elsewhere:  # never re-grant what another source withdrew
                conflict = Conflict(p.pupil_id, k, str(cur["kind"]), str(cur["source"]), str(cur["set_at"] or ""))
                if not accept_regrants:
                    out.conflicts.append(conflict)
                    _store_admin_value(conn, p.pupil_id, k, admin)
                    continue
                out.regrants.append(conflict)
            changes.append(Change(p.pupil_id, k, value, admin))
            _store_value(conn, p.pupil_id, k, admin, KIND_ADMIN, source, now, admin_value=admin)
        names_changed = (old["first_name"], old["surname_prefix"], old["surname"], old["phone"]) != (
            p.first_name,
            p.surname_prefix,
            p.surname,
            p.phone,
        )
        if changes or names_changed:
            conn.execute(
                "UPDATE pupils SET first_name=?, surname_prefix=?, surname=?, grp=?, left_on=?, "
                "phone=?, updated_at=?, confirmed_at=? WHERE pupil_id=?",
                (p.first_name, p.surname_prefix, p.surname, p.group, left, p.phone, now, now, p.pupil_id),
            )
        return out


@dataclass
class _Applied:
    """What one pupil's row of an import did."""

    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    regrants: list[Conflict] = field(default_factory=list)


def import_csv(store: Store, path: Path, *, accept_regrants: bool = False) -> ImportReport:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConsentImportError([f"cannot read {path.name}: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConsentImportError([f"not UTF-8 text (byte {exc.start}); export the list as UTF-8 CSV"]) from None
    pupils = parse_csv(text)
    return Registry(store).import_pupils(pupils, source=f"csv:{path.name}", accept_regrants=accept_regrants)


def _store_admin_value(conn: sqlite3.Connection, pupil_id: str, key: str, admin: bool) -> None:
    conn.execute("UPDATE consent SET admin_value=? WHERE pupil_id=? AND key=?", (int(admin), pupil_id, key))


def _store_value(
    conn: sqlite3.Connection,
    pupil_id: str,
    key: str,
    value: bool,
    kind: str,
    source: str,
    now: str,
    *,
    admin_value: bool | None = None,
) -> None:
    """Write one consent value with its provenance; ``admin_value`` (an import) also records the
    administration's own answer, otherwise the one recorded before stays."""
    conn.execute(
        "INSERT INTO consent(pupil_id, key, value, kind, source, set_at, admin_value) VALUES(?,?,?,?,?,?,?) "
        "ON CONFLICT(pupil_id, key) DO UPDATE SET value=excluded.value, kind=excluded.kind, "
        "source=excluded.source, set_at=excluded.set_at, "
        "admin_value=COALESCE(excluded.admin_value, consent.admin_value)",
        (pupil_id, key, int(value), kind, source, now, None if admin_value is None else int(admin_value)),
    )


def _history(conn: sqlite3.Connection, ch: Change, now: str, source: str, version: int, kind: str) -> None:
    def enc(v: object) -> object:
        return int(v) if isinstance(v, bool) else v

    conn.execute(
        "INSERT INTO consent_history(at, pupil_id, key, old_value, new_value, source, version, kind) "
        "VALUES(?,?,?,?,?,?,?,?)",
        (now, ch.pupil_id, ch.key, enc(ch.old), enc(ch.new), source, version, kind),
    )


def _row_to_pupil(r: sqlite3.Row, consents: dict[str, bool]) -> Pupil:
    return Pupil(
        pupil_id=r["pupil_id"],
        first_name=r["first_name"],
        surname_prefix=r["surname_prefix"],
        surname=r["surname"],
        group=r["grp"],
        left_on=date.fromisoformat(r["left_on"]) if r["left_on"] else None,
        phone=r["phone"],
        consents={k: consents.get(k, False) for k in CONSENT_KEYS},
    )


def withdrawals(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.is_withdrawal]

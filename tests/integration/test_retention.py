"""The sweep on a ledger built by hand: periods, idempotence, concurrency, links and containment."""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from photoguard.config import Settings, load_settings, parse_settings
from photoguard.core.eligibility import withdrawal_reason
from photoguard.core.records import Pupil
from photoguard.followup.propagate import propagate_changes, safe_unlink
from photoguard.followup.retention import Sweeper, run_sweep
from photoguard.ledger import ledger
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store, iso
from tests.support.school import init_school

TODAY = date(2026, 11, 21)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _root(tmp_path: Path) -> tuple[Path, Settings, Store]:
    root = init_school(tmp_path / "school")
    settings = load_settings(root)
    store = Store(root / "state" / "photoguard.sqlite3")
    pupils = [
        Pupil("p1", "Anna", "", "Smit", "5", None, "", {"parro": True, "website": True}),
        Pupil(
            "p2", "Bram", "", "Kok", "5", date(2026, 11, 1), "", {"parro": True, "website": True}
        ),
        Pupil("p3", "Cor", "", "Dam", "5", None, "", {"parro": True, "website": False}),
    ]
    Registry(store).import_pupils(pupils, source="test")
    return root, settings, store


def _output(root: Path, store: Store, channel: str, name: str, pupils: list[str]) -> Path:
    path = root / "outbox" / channel / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"jpeg " + name.encode())
    rel = str(path.relative_to(root))
    with store.transaction() as c:
        ledger.add_output_in(c, ledger.NewOutput("src-" + name, channel, rel, "h-" + name, pupils, 1))
    return path


def _age(path: Path, days: float = 0, minutes: float = 0) -> None:
    t = (NOW - timedelta(days=days, minutes=minutes)).timestamp()
    os.utime(path, (t, t), follow_symlinks=False)


def test_rules_per_channel() -> None:
    s = parse_settings({"retention": {"leaver_channels": ["parro"], "leaver_other_days": 30}})
    r = s.retention
    left = Pupil("x", "X", "", "Y", "5", date(2026, 10, 1), "", {"parro": True, "website": True})
    assert withdrawal_reason(left, "parro", "parro", r, TODAY) == "pupil left the school"
    assert withdrawal_reason(left, "website", "website", r, date(2026, 10, 30)) is None
    assert "30 days" in str(withdrawal_reason(left, "website", "website", r, date(2026, 10, 31)))
    future = Pupil("y", "Y", "", "Z", "5", date(2027, 1, 1), "", {"parro": True})
    assert withdrawal_reason(future, "parro", "parro", r, TODAY) is None
    assert withdrawal_reason(None, "parro", "parro", r, TODAY) == "pupil no longer in the registry"
    assert (
        withdrawal_reason(future, "website", "website", r, TODAY) == "consent for website withdrawn"
    )


def test_sweep_withdraws_leavers_and_missed_withdrawals_once(tmp_path: Path) -> None:
    root, settings, store = _root(tmp_path)
    keep = _output(root, store, "parro", "a.jpg", ["p1"])
    leaver = _output(root, store, "parro", "b.jpg", ["p1", "p2"])
    leaver_web = _output(root, store, "website", "b.jpg", ["p2"])
    missed = _output(root, store, "website", "c.jpg", ["p3"])  # consent never propagated
    ghost = _output(root, store, "parro", "d.jpg", ["p9"])  # not in the registry: fail closed
    rep = Sweeper(root, settings, store, today=TODAY, now=NOW).run()
    assert rep.withdrawn_by_channel == {"parro": 2, "website": 1}
    assert keep.exists() and leaver_web.exists()
    assert not leaver.exists() and not missed.exists() and not ghost.exists()
    reasons = {r["output_path"]: r["reason"] for r in store.query("SELECT * FROM takedowns")}
    assert reasons == {
        "outbox/parro/b.jpg": "pupil left the school",
        "outbox/website/c.jpg": "consent for website withdrawn",
        "outbox/parro/d.jpg": "pupil no longer in the registry",
    }
    assert not Sweeper(root, settings, store, today=TODAY, now=NOW).run().changed_anything
    assert store.query("SELECT COUNT(*) FROM takedowns")[0][0] == 3


def test_periods_vault_quarantine_audit_temp(tmp_path: Path) -> None:
    root, settings, store = _root(tmp_path)
    vault = root / "vault"
    vault.mkdir()
    old, young = vault / ("a" * 64 + ".enc"), vault / ("b" * 64 + ".enc")
    for p in (old, young):
        p.write_bytes(b"x")
    _age(old, days=settings.originals.vault_days + 1)
    _age(young, days=settings.originals.vault_days - 1)
    q_old, q_new = root / "quarantine" / "q1", root / "quarantine" / "q2"
    for q, days in ((q_old, settings.retention.quarantine_days + 1), (q_new, 1)):
        (q / "sub").mkdir(parents=True)
        (q / "original.jpg").write_bytes(b"x")
        with store.transaction() as c:
            c.execute(
                "INSERT INTO quarantine(id, sha256, status, reason, created_at) VALUES(?,?,?,?,?)",
                (q.name, "s-" + q.name, "held", "r", iso(NOW - timedelta(days=days))),
            )
    with store.transaction() as c:
        c.execute(
            "INSERT INTO audit(at, event) VALUES(?, 'old')",
            (iso(NOW - timedelta(days=settings.retention.audit_days + 1)),),
        )
    tmp_old = root / "outbox" / "parro" / ".pg-0123.tmp"
    tmp_new = root / "outbox" / "parro" / ".pg-4567.tmp"
    for p in (tmp_old, tmp_new):
        p.write_bytes(b"x")
    _age(tmp_old, minutes=settings.retention.temp_minutes + 1)
    _age(tmp_new, minutes=1)
    rep = Sweeper(root, settings, store, today=TODAY, now=NOW).run()
    assert (rep.vault_deleted, rep.quarantine_deleted, rep.audit_pruned, rep.temp_deleted) == (
        1,
        1,
        1,
        1,
    )
    assert not old.exists() and young.exists()
    assert not q_old.exists() and q_new.exists()
    assert not tmp_old.exists() and tmp_new.exists()
    assert store.one("SELECT status FROM quarantine WHERE id='q1'")["status"] == "expired"  # type: ignore[index]
    kinds = sorted(r["kind"] for r in store.query("SELECT kind FROM deletion_log"))
    assert kinds == ["audit", "original", "quarantine", "temp"]
    assert not Sweeper(root, settings, store, today=TODAY, now=NOW).run().changed_anything


def test_links_are_never_followed(tmp_path: Path) -> None:
    root, settings, store = _root(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / ("c" * 64 + ".enc")
    precious.write_bytes(b"precious")
    _age(precious, days=400)
    (root / "vault").mkdir()
    link = root / "vault" / ("c" * 64 + ".enc")
    link.symlink_to(precious)
    qdir = outside / "qdir"
    qdir.mkdir()
    (qdir / "keep.jpg").write_bytes(b"k")
    qlink = root / "quarantine" / "qlink"
    qlink.symlink_to(qdir, target_is_directory=True)
    old_q = root / "quarantine" / "q-old"
    old_q.mkdir()
    (old_q / "escape").symlink_to(outside)
    with store.transaction() as c:
        c.execute(
            "INSERT INTO quarantine(id, sha256, status, reason, created_at) "
            "VALUES('q-old','s','held','r',?)",
            (iso(NOW - timedelta(days=400)),),
        )
    tmp_target = outside / ".pg-dead.tmp"
    tmp_target.write_bytes(b"t")
    _age(tmp_target, days=2)
    (root / "outbox" / "parro" / ".pg-link.tmp").symlink_to(tmp_target)
    # a ledger row pointing outside the outbox, and one whose folder is a link
    evil = _output(root, store, "parro", "e.jpg", ["p2"])
    with store.transaction() as c:
        c.execute(
            "UPDATE outputs SET path='../outside/" + precious.name + "' WHERE path=?",
            (str(evil.relative_to(root)),),
        )
    rep = Sweeper(root, settings, store, today=TODAY, now=NOW).run()
    assert (
        precious.read_bytes() == b"precious"
        and (qdir / "keep.jpg").exists()
        and tmp_target.exists()
    )
    assert (
        outside.is_dir() and not old_q.exists()
    )  # the item went, the link inside was not followed
    assert rep.outputs_withdrawn == 1 and rep.refused
    assert safe_unlink(root / "outbox", root / "outbox" / ".." / "photoguard.toml") == "refused"
    assert (root / "photoguard.toml").exists()


def test_two_sweeps_at_once(tmp_path: Path) -> None:
    root, settings, store = _root(tmp_path)
    for i in range(30):
        _output(root, store, "parro", f"x{i}.jpg", ["p2"])
    other = Store(root / "state" / "photoguard.sqlite3")
    reports = []
    errors: list[BaseException] = []

    def go(st: Store) -> None:
        try:
            reports.append(run_sweep(root, settings, st, today=TODAY))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in (store, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(reports) == 2
    assert sorted(r.outputs_withdrawn for r in reports) == [0, 30]
    assert store.query("SELECT COUNT(*) FROM takedowns")[0][0] == 30
    assert not list((root / "outbox" / "parro").glob("x*.jpg"))


def test_leftover_file_of_withdrawn_output_is_removed(tmp_path: Path) -> None:
    root, settings, store = _root(tmp_path)
    path = _output(root, store, "parro", "z.jpg", ["p1"])
    with store.transaction() as c:  # a crash after the ledger update, before the unlink
        [oid] = [int(r["id"]) for r in c.execute("SELECT id FROM outputs")]
        assert ledger.withdraw_in(c, oid, "x", iso())
    (path.parent / (path.name + ".txt")).write_text("caption", encoding="utf-8")
    rep = Sweeper(root, settings, store, today=TODAY, now=NOW).run()
    assert rep.orphan_files_deleted == 2 and not path.exists()


def test_future_leave_date_keeps_templates_until_the_day(tmp_path: Path) -> None:
    root, settings, store = _root(tmp_path)
    from photoguard.ledger import keys
    from photoguard.ledger.templates import TemplateVault

    master = keys.load_master(root / "state" / "photoguard.key")
    import numpy as np

    with store.transaction() as c:
        c.execute("INSERT INTO consent(pupil_id, key, value) VALUES('p1','face_matching',1)")
    TemplateVault(store, master).add("p1", np.ones(128, dtype=np.float32), "enrol")
    future = Pupil(
        "p1",
        "Anna",
        "",
        "Smit",
        "5",
        TODAY + timedelta(days=3),
        "",
        {"parro": True, "website": True, "face_matching": True},
    )
    rep = Registry(store).import_pupils([future], source="t")
    prop = propagate_changes(root, settings, store, rep.changes, today=TODAY)
    assert prop.templates_destroyed == {} and TemplateVault(store, master).count("p1") == 1
    assert Sweeper(root, settings, store, today=TODAY, now=NOW).run().templates_destroyed == {}
    later = Sweeper(root, settings, store, today=TODAY + timedelta(days=3)).run()
    assert later.templates_destroyed == {"p1": 1}
    assert store.query("SELECT COUNT(*) FROM pupil_keys")[0][0] == 0

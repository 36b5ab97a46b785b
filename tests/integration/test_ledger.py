"""The ledger's queries: live outputs, and SQL that must agree with ``core.eligibility``."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from photoguard.core import eligibility as el
from photoguard.core.records import Pupil
from photoguard.ledger import keys, ledger
from photoguard.ledger.consent import Registry
from photoguard.ledger.db import Store, iso
from photoguard.ledger.templates import TemplateVault

TODAY = date(2026, 11, 21)
LEFTS = [None, TODAY - timedelta(days=100), TODAY, TODAY + timedelta(days=5)]
ANSWERS: list[bool | None] = [True, False, None]  # None: no consent row at all


def _school(store: Store, keys_: tuple[str, ...]) -> list[str]:
    """One pupil per combination of leave date and yes/no/blank for each of ``keys_``."""
    pupils = []
    for n, (left, *answers) in enumerate(itertools.product(LEFTS, *[ANSWERS] * len(keys_))):
        consents = {k: v for k, v in zip(keys_, answers, strict=True) if v is not None}
        pupils.append(Pupil(f"p{n}", "Emma", "", "Vries", "7", left, "", consents))
    Registry(store).import_pupils(pupils, source="test")
    return [p.pupil_id for p in pupils] + ["ghost"]  # ghost: shown once, never in the registry


def _publish(store: Store, sha: str, channel: str, pupils: list[str], path: str | None = None) -> int:
    with store.transaction() as conn:
        return ledger.add_output_in(
            conn, ledger.NewOutput(sha, channel, path or f"outbox/{channel}/{sha}.jpg", "h-" + sha, pupils, 1)
        )


def test_live_outputs_are_exactly_the_ones_not_withdrawn(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3", create=True)
    _publish(store, "A", "parro", ["p1"])
    web = _publish(store, "A", "website", ["p1", "p2"])
    _publish(store, "B", "parro", [])
    assert ledger.live_channels(store, "A") == {"parro", "website"}
    with store.transaction() as conn:
        assert ledger.withdraw_in(conn, web, "consent for website withdrawn", iso())
        assert not ledger.withdraw_in(conn, web, "again", iso()), "a withdrawn output is not withdrawn twice"
        assert not ledger.withdraw_in(conn, 999, "unknown", iso())
        assert ledger.live_channels(conn, "A") == {"parro"}, "inside the transaction too"
    assert ledger.live_outputs(store, "A") == {"parro": "outbox/parro/A.jpg"}
    assert ledger.live_outputs(store, "C") == {}
    assert ledger.live_count_by_channel(store) == {"parro": 2}
    assert ledger.counts(store).live_outputs == 2
    assert ledger.path_ever_used(store, "outbox/website/A.jpg"), "withdrawn names are never reused"
    assert not ledger.path_ever_used(store, "outbox/website/Z.jpg")
    assert ledger.withdrawn_leftovers(store) == {"outbox/website/A.jpg": (web, "h-A")}
    # a live output on the same path (a restored file) is not a leftover of the withdrawn one
    _publish(store, "A2", "website", ["p1"], path="outbox/website/A.jpg")
    assert ledger.withdrawn_leftovers(store) == {}
    # withdrawn outputs show up in no live query, nor among withdrawal candidates
    assert all(c.output_id != web for c in ledger.withdrawal_candidates(store, [("website", "website")]))


def test_candidate_sql_selects_exactly_what_the_rule_could_withdraw(tmp_path: Path) -> None:
    """Every combination of registry state x channel: the SQL candidate query and
    ``could_need_withdrawal`` agree, so the dated rule applied in Python sees every case."""
    store = Store(tmp_path / "db.sqlite3", create=True)
    ids = _school(store, ("parro", "website"))
    for pid in ids:
        _publish(store, "src-" + pid, "parro", [pid])
        _publish(store, "src-" + pid, "website", sorted({pid, "p0"}))  # p0: not left, says yes
    chans = [("parro", "parro"), ("website", "website")]
    registry = Registry(store).pupils()
    got = {(c.channel, c.pupil_id) for c in ledger.withdrawal_candidates(store, chans)}
    want = {(ch, pid) for pid in ids for ch, key in chans if el.could_need_withdrawal(registry.get(pid), key)}
    assert got == want
    assert ("parro", "ghost") in got and len(got) < 2 * len(ids) + 1, "both outcomes occur"
    only = ledger.withdrawal_candidates(store, chans, ["ghost", "p1"])
    assert {c.pupil_id for c in only} <= {"ghost", "p1"} and any(c.pupil_id == "ghost" for c in only)
    assert ledger.withdrawal_candidates(store, chans, []) == []
    assert ledger.withdrawal_candidates(store, [], None) == []


def test_gallery_holds_exactly_the_pupils_the_rule_lets_us_match(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3", create=True)
    ids = _school(store, ("face_matching",))
    vault = TemplateVault(store, keys.load_master(tmp_path / "k.key", create=True))
    for n, pid in enumerate(ids):
        vault.add(pid, np.full(128, 0.01 * (n + 1), dtype=np.float32), f"enrol-{pid}")
    registry = Registry(store).pupils()
    allowed = {pid for pid in ids if el.may_match(registry.get(pid), TODAY)}
    assert set(vault.gallery(TODAY).pupil_ids) == allowed
    assert allowed and allowed != set(ids), "both outcomes occur"
    assert TemplateVault.holders(store) == set(ids)
    for pid in ids:
        refused = el.matching_bar(registry.get(pid), TODAY) is not None
        try:
            vault.may_enrol(pid, TODAY)
            assert not refused, pid
        except Exception:
            assert refused, pid

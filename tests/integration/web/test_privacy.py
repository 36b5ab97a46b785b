"""The privacy officer's pages through the web app: consents per pupil with names and their
history with sources, the 12-month list, the deletion log, the privacy report, the audit trail
filtered by account, event and date, paged; every list as Excel-ready CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from photoguard.ledger import users
from photoguard.ledger.audit import AuditEvent
from photoguard.ledger.consent import Registry
from tests.integration.web.school import WebSchool, make_web_school

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def school(tmp_path: Path) -> WebSchool:
    return make_web_school(tmp_path)


def _csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark, for Excel
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def _id(s: WebSchool, login: str) -> int:
    u = users.get_user(s.pipe.store, login)
    assert u is not None
    return u.id


def test_consents_per_pupil_with_names_and_history_with_sources(school: WebSchool) -> None:
    Registry(school.pipe.store).set_consent("1001", "newsletter", False, "brief van ouders 1-12")
    c = school.login("pieter")
    page = c.get("/privacy/consents")
    assert page.status_code == 200
    assert "Emma de Vries" in page.text and "Daan van der Berg" in page.text
    assert 'href="/privacy/consents/1001"' in page.text
    hist = c.get("/privacy/consents/1001")
    assert hist.status_code == 200 and "Emma de Vries" in hist.text
    assert "brief van ouders 1-12" in hist.text and "handmatig" in hist.text  # the source and its kind
    assert "administratie" in hist.text  # the import before it
    rows = _csv(c.get("/privacy/consents/1001.csv").content)
    assert rows[0][:4] == ["Tijd", "Wat", "Oud", "Nieuw"]
    assert ["Nieuwsbrief", "ja", "nee", "handmatig", "brief van ouders 1-12"] in [r[1:6] for r in rows[1:]]
    table = _csv(c.get("/privacy/consents.csv").content)
    emma = next(r for r in table if r[0] == "1001")
    assert emma[1] == "Emma de Vries" and emma[table[0].index("Nieuwsbrief")] == "nee"
    assert c.get("/privacy/consents/9999").status_code == 404


def test_the_twelve_month_list_names_who_to_remind(school: WebSchool) -> None:
    with school.pipe.store.transaction() as conn:
        conn.execute("UPDATE pupils SET confirmed_at='2024-01-01T00:00:00+00:00' WHERE pupil_id='1002'")
    c = school.login("pieter")
    page = c.get("/privacy/unconfirmed").text
    assert "Daan van der Berg" in page and "1-1-2024 01:00" in page  # Amsterdam time, the Dutch way
    assert "Emma" not in page  # confirmed at the import, just now
    rows = _csv(c.get("/privacy/unconfirmed.csv").content)
    assert rows[0] == ["Leerling-id", "Naam", "Groep", "Laatst bevestigd", "Dagen geleden"]
    assert [r[:4] for r in rows[1:]] == [["1002", "Daan van der Berg", "7", "1-1-2024 01:00"]]
    assert int(rows[1][4]) == (date.today() - date(2024, 1, 1)).days


def test_audit_trail_filtered_by_account_event_and_date_and_paged(school: WebSchool) -> None:
    school.login("carla")
    school.login("anne")
    p = school.login("pieter")
    carla, anne = _id(school, "carla"), _id(school, "anne")
    page = p.get("/privacy/audit").text
    assert "carla" in page and "anne" in page and "web.login" in page
    only_carla = p.get(f"/privacy/audit?who={carla}").text
    assert ">carla<" in only_carla.replace("\n", "") and '<td data-label="Wie">anne</td>' not in only_carla
    rows = _csv(p.get(f"/privacy/audit.csv?who={anne}&what=web.login").content)
    assert rows[0][:3] == ["Tijd", "Wie", "Wat"]
    assert [r[1:3] for r in rows[1:]] == [["anne", "ingelogd (web.login)"]]
    assert _csv(p.get("/privacy/audit.csv?what=web.login&to=2000-01-01").content)[1:] == []
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()  # the school's day, not the machine's
    lo, hi = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    assert len(_csv(p.get(f"/privacy/audit.csv?what=web.login&from={lo}&to={hi}").content)) == 4
    # 120 more events: three pages of 50, newest first
    for i in range(120):
        school.pipe.store.audit(AuditEvent("test.paging", detail={"account": carla, "n": i}))
    first = p.get("/privacy/audit?what=test.paging").text
    assert "120 gebeurtenissen" in first and "Pagina 1 van 3" in first and "n=119" in first
    third = p.get("/privacy/audit?what=test.paging&page=3").text
    assert "Pagina 3 van 3" in third and "n=0<" in third.replace("\n", "") and "n=119" not in third
    assert 'href="/privacy/audit?what=test.paging&amp;page=2"' in third


def test_audit_days_are_the_schools_days(school: WebSchool) -> None:
    """00:30 on 1 July in Amsterdam is 22:30 UTC on 30 June: it belongs to 1 July."""
    with school.pipe.store.transaction() as conn:
        conn.execute(
            "INSERT INTO audit(at, event, detail) VALUES(?,?,?)", ("2026-06-30T22:30:00+00:00", "test.night", "{}")
        )
    p = school.login("pieter")

    def found(query: str) -> list[list[str]]:
        return _csv(p.get(f"/privacy/audit.csv?what=test.night&{query}").content)[1:]

    assert [r[0] for r in found("from=2026-07-01&to=2026-07-01")] == ["1-7-2026 00:30"]
    assert found("from=2026-06-30&to=2026-06-30") == []
    assert found("to=2026-06-30") == [] and len(found("from=1-7-2026")) == 1  # the Dutch way is read too


def test_deletion_log_takedowns_and_report(school: WebSchool) -> None:
    store = school.pipe.store
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO deletion_log(at, kind, ref, sha256, channel, reason) VALUES(?,?,?,?,?,?)",
            ("2026-06-30T22:30:00+00:00", "output", "outbox/website/x.jpg", "b" * 64, "website", "retention"),
        )
    Registry(store).set_consent("1001", "guide", False, "telefoon")
    c = school.login("pieter")
    log = c.get("/privacy/deletions").text
    assert "1-7-2026 00:30" in log and "outbox/website/x.jpg" in log
    rows = _csv(c.get("/privacy/deletions.csv").content)
    assert rows[1][:3] == ["1-7-2026 00:30", "gepubliceerd bestand (output)", "outbox/website/x.jpg"]
    report = c.get("/privacy/report").text
    assert "Privacyrapport" in report and "Schoolgids" in report and "1001" in report
    rep = _csv(c.get("/privacy/report.csv").content)
    assert ["toestemming", "1001", "Schoolgids"] in [[r[0], r[3], r[4]] for r in rep[1:]]
    assert any(r[0] == "verwijdering" and r[1] == "1-7-2026 00:30" for r in rep[1:])
    # a period without those events
    assert "1-7-2026" not in c.get("/privacy/report?from=2020-01-01&to=2020-12-31").text
    assert c.get("/privacy/takedowns").status_code == 200


def test_the_index_shows_each_role_its_lists_and_english_works(school: WebSchool) -> None:
    p = school.login("pieter").get("/privacy").text
    for href in ("consents", "unconfirmed", "takedowns", "deletions", "report", "audit"):
        assert f'href="/privacy/{href}"' in p
    ad = school.login("ad")
    a = ad.get("/privacy").text
    assert 'href="/privacy/audit"' in a and 'href="/privacy/consents"' not in a
    en = school.login("pieter").get("/privacy/audit", headers={"accept-language": "en"}).text
    assert "Audit trail" in en and "Who" in en

"""Terminal escapes from outside never reach the admin's terminal (issue 17, the class "CSV and
text outputs"): the consent commands (a refused export's header, conflicts, sources, the CSV's own
file name), ``enrol`` (a photo's file name), ``status`` (a folder problem) and the web app's CSV
downloads show every control, bidi and line-separator character as a visible escape.
test_output_injection.py covers classlist, takedown, report and review the same way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.ledger.consent import KIND_WEB, Registry
from photoguard.ledger.db import Store
from tests.integration.web.school import make_web_school
from tests.support.fake_cli import fake_pipeline
from tests.support.photos import make_photo
from tests.support.school import CONSENT_COLUMNS, EMMA, consent_csv, import_consent, init_school

pytestmark = pytest.mark.timeout(120)

#: an OSC retitle, a bell, a CSI clear screen and a right-to-left override
ESC = "\x1b]0;pwned\x07\x1b[2J\u202e"
#: what may never reach a terminal raw (tabs and line ends are the output's own)
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _run(root: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["--root", str(root), *argv], pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    out = capsys.readouterr()
    return rc, out.out + out.err


def _clean(text: str, what: str) -> None:
    bad = RAW_CONTROL.findall(text)
    assert not bad, f"{what}: raw control characters {bad!r} in {text!r}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return init_school(tmp_path / "school", template_engine='"opencv"')


def test_a_refused_consent_export_shows_its_header_and_name_escaped(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / f"export{ESC}.csv"
    bad.write_text(consent_csv(rows=[], columns=(*CONSENT_COLUMNS[:-1], f"kolom{ESC}")), encoding="utf-8")
    rc, out = _run(root, capsys, "consent", "import", str(bad))
    assert rc == 1 and "nothing was imported" in out and "unknown column" in out
    _clean(out, "consent import (refused)")
    assert "kolom\\x1b]0" in out  # still there, shown for what it is (the ; splits the header)


def test_consent_import_show_and_conflicts_are_terminal_safe(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / f"ouders{ESC}.csv"
    export.write_text(consent_csv([EMMA]), encoding="utf-8")
    rc, out = _run(root, capsys, "consent", "import", str(export))
    assert rc == 0, out
    _clean(out, "consent import")
    # a parent withdraws through a web form whose source text carries escapes
    store = Store(root / "state" / "photoguard.sqlite3")
    Registry(store).set_consent("1001", "parro", False, source=f"web:{ESC}", kind=KIND_WEB)
    store.close()
    rc, out = _run(root, capsys, "consent", "import", str(export))  # the export still says yes
    assert rc == 1 and "conflict" in out, out
    _clean(out, "consent import (conflict)")
    assert "web:\\x1b]0;pwned" in out
    rc, out = _run(root, capsys, "consent", "show", "1001")
    assert rc == 0 and "not from the administration's export" in out and "history" in out
    _clean(out, "consent show")
    assert "web:\\x1b]0;pwned" in out and "csv:ouders\\x1b]0;pwned" in out
    rc, out = _run(root, capsys, "consent", "stale", "--older-than", "1d")
    assert rc == 0
    _clean(out, "consent stale")


def test_enrol_shows_a_photos_file_name_escaped(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(root / "state" / "photoguard.sqlite3")
    import_consent(store, root / "c.csv", consent_csv([EMMA]))
    store.close()
    photo = make_photo(root / "enrol" / f"emma{ESC}.jpg", seed=3)
    rc, out = _run(root, capsys, "enrol", "1001", str(photo))
    assert "photo(s) enrolled" in out, out
    _clean(out, "enrol")
    assert "emma\\x1b]0;pwned" in out
    assert rc in (0, 1)  # enrolled or refused with a reason: either way the name is shown safely


def test_status_shows_a_folder_problem_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = init_school(tmp_path / f"school{ESC}")
    store = Store(root / "state" / "photoguard.sqlite3")
    import_consent(store, root / "c.csv", consent_csv([EMMA]))
    store.close()
    (root / "outbox").rename(tmp_path / "outbox-unmounted")  # the share is not mounted
    rc, out = _run(root, capsys, "status")
    assert rc == 1  # no service running
    assert "PROBLEM: the outbox folder" in out and "school\\x1b]0;pwned" in out, out
    _clean(out, "status")


def test_every_web_csv_download_is_terminal_safe(tmp_path: Path) -> None:
    school = make_web_school(tmp_path)
    store = school.pipe.store
    Registry(store).set_consent("1001", "website", True, source=f"web:{ESC}", kind=KIND_WEB)
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO takedowns(at, channel, output_path, output_sha256, pupil_id, reason) "
            "VALUES('2026-11-21T10:00:00+00:00','parro',?,'h1','1001',?)",
            (f"outbox/parro/2026-11-21_{ESC}.jpg", f"withdrawn {ESC}"),
        )
        conn.execute(
            "INSERT INTO deletion_log(at, kind, ref, sha256, channel, reason) VALUES(?,?,?,?,?,?)",
            ("2026-11-30T10:00:00+00:00", "original", f"ref{ESC}", None, None, f"expired {ESC}"),
        )
    pieter, carla = school.login("pieter"), school.login("carla")
    urls = [
        "/privacy/consents.csv",
        "/privacy/consents/1001.csv",
        "/privacy/unconfirmed.csv",
        "/privacy/takedowns.csv",
        "/privacy/deletions.csv",
        "/privacy/report.csv",
        "/privacy/audit.csv",
        "/comms/takedowns.csv",
    ]
    escaped = 0
    for url in urls:
        client = carla if url.startswith("/comms") else pieter
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), url
        body = r.content.decode("utf-8-sig")
        _clean(body.replace("\r\n", "\n").replace("\n", ""), url)
        escaped += "\\x1b]0;pwned" in body
    assert escaped >= 3, "the hostile values reached the downloads (escaped), so the check saw them"

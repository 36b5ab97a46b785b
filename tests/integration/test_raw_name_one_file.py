"""``photoguard process FILE`` on one file whose name (and teacher's folder) is not UTF-8 (issue 17,
data loss): published once with its ledger row, no traceback, the original leaves the inbox, and
nothing the admin reads carries the raw bytes. test_intake_stalls.py covers a folder of such
files and the watch service."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.ledger.db import Store
from tests.support.fake_cli import fake_pipeline
from tests.support.photos import photo_bytes
from tests.support.school import make_school

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_process_one_file_named_in_latin1_in_a_latin1_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    root, pipe = make_school(tmp_path)
    pipe.store.close()
    folder = os.fsencode(root / "inbox") + b"/juf-Ren\xe9e"
    os.mkdir(folder)
    raw = folder + b"/IMG_\xe9t\xe9_\xff.jpg"
    data = photo_bytes(seed=91)
    with open(raw, "wb") as fh:
        fh.write(data)
    capsys.readouterr()
    argv = ["--root", str(root), "process", *(["--json"] if as_json else []), os.fsdecode(raw)]
    rc = main(argv, pipeline_factory=fake_pipeline(0.0))  # type: ignore[arg-type]
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    assert rc == 0, out.out + out.err
    assert not os.path.exists(raw), "the original leaves the inbox once published"
    (out.out + out.err).encode("utf-8")  # printable text, no lone surrogates
    if as_json:
        [line] = [json.loads(x) for x in out.out.splitlines() if x.startswith("{")]
        assert line["status"] == "published"
    else:
        assert "1 photo(s): 1 published" in out.out
    store = Store(root / "state" / "photoguard.sqlite3")
    try:
        row = store.one("SELECT status, stem, uploader FROM photos WHERE sha256=?", (hashlib.sha256(data).hexdigest(),))
        assert row is not None and row["status"] == "published"
        str(row["stem"]).encode("utf-8")
        str(row["uploader"]).encode("utf-8")
        n = store.one("SELECT COUNT(*) AS n FROM outputs WHERE source_sha256=?", (hashlib.sha256(data).hexdigest(),))
        assert n is not None and n["n"] == 5
    finally:
        store.close()

"""An upload that is still arriving (the file ends early, the watch service waits for the rest)
is shown on the teacher's own uploads page: a count from the service's heartbeat, written as the
service writes it, per inbox folder and without file names."""

from __future__ import annotations

import json
import time
from pathlib import Path

from photoguard.config import Layout
from photoguard.service.health import HEARTBEAT_NAME, read_heartbeat, write_heartbeat
from photoguard.service.watch import WatchService
from tests.integration.web.school import WebSchool, make_web_school
from tests.support.photos import photo_bytes

ODD_NAME = "klas\x1b[31m\u202egpj.jpg"


def _service_waiting_on_a_half_upload(school: WebSchool) -> WatchService:
    """The watch service (not started: no threads) that has seen half a JPEG in juf-anne's
    folder twice and now waits for the rest of it; its heartbeat written the service's way."""
    half = school.root / "inbox" / "juf-anne" / ODD_NAME
    data = photo_bytes(seed=11)
    half.write_bytes(data[: len(data) // 2])
    svc = WatchService(
        school.root, school.pipe.settings, school.pipe, settle_seconds=0.0, incomplete_grace=3600.0, min_free_bytes=0
    )
    assert svc.offer(half, from_scan=True)
    svc._settle_pass(time.monotonic())  # first look: size and time noted
    svc._settle_pass(time.monotonic())  # unchanged: judged, it ends early -> waiting
    svc._write_heartbeat()
    return svc


def test_the_heartbeat_counts_waiting_uploads_per_folder_without_names(tmp_path: Path) -> None:
    school = make_web_school(tmp_path)
    _service_waiting_on_a_half_upload(school)
    raw = (school.root / "state" / HEARTBEAT_NAME).read_text(encoding="utf-8")
    assert "klas" not in raw and "gpj" not in raw  # no file name, in any spelling
    per = json.loads(raw)["incomplete"]["folders"]
    assert list(per) == ["juf-anne"]
    assert per["juf-anne"]["waiting"] == 1 and len(per["juf-anne"]["ids"]) == 1


def test_the_teacher_sees_her_upload_still_arriving_and_only_hers(tmp_path: Path) -> None:
    school = make_web_school(tmp_path)
    _service_waiting_on_a_half_upload(school)
    anne = school.login("anne")
    page = anne.get("/uploads").text
    assert "1 upload(s) nog onderweg: wacht op de rest van het bestand." in page
    assert "klas" not in page
    english = anne.get("/uploads", headers={"accept-language": "en"}).text
    assert "1 upload(s) still arriving" in english
    bob = school.login("bob").get("/uploads").text
    assert "nog onderweg" not in bob


def test_a_stale_or_stopped_heartbeat_shows_nothing_arriving(tmp_path: Path) -> None:
    school = make_web_school(tmp_path)
    _service_waiting_on_a_half_upload(school)
    layout = Layout(school.root, school.pipe.settings)
    beat = read_heartbeat(layout)
    assert beat is not None
    anne = school.login("anne")
    assert "nog onderweg" in anne.get("/uploads").text
    write_heartbeat(layout, {**beat, "updated_unix": time.time() - 3600})  # the service died an hour ago
    assert "nog onderweg" not in anne.get("/uploads").text
    write_heartbeat(layout, {**beat, "state": "stopped"})
    assert "nog onderweg" not in anne.get("/uploads").text

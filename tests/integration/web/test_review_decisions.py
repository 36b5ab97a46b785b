"""Review decisions per face through the web: confirm the near-matched pupil, "not this pupil",
"not a face"; the decision re-renders the previews, survives until approval and is what gets
published (the consent rule still decides per channel). CSRF on every new form, roles, escaping,
audit with ids only; and the optional list of published photos where a consenting pupil was
redacted (confirm there renders the photo again and replaces its outputs)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photoguard.core.records import Box
from photoguard.ledger import ledger, users
from photoguard.ledger.consent import import_csv
from tests.integration.web.school import WebSchool, audit_rows, csrf_of, make_web_school
from tests.support.models import FACE_A, FACE_B, FakeDetector, FakeTemplates, fake_vector
from tests.support.photos import make_photo
from tests.support.school import EMMA, consent_csv

pytestmark = pytest.mark.timeout(120)
HELD = ("newsletter", "parro", "guide")  # Emma has consent there; not for website and social


def _near() -> FakeTemplates:
    """FACE_A only nearly matches Emma (1001); FACE_B matches nobody."""
    return FakeTemplates({FACE_A: fake_vector(1) + fake_vector(7), FACE_B: fake_vector(2)})


@pytest.fixture
def school(tmp_path: Path) -> WebSchool:
    s = make_web_school(tmp_path)
    s.pipe.templates = _near()  # type: ignore[assignment]  # the approval sees the same near match
    return s


def _faces_in(data: bytes) -> set[Box]:
    """The fake faces still textured (not redacted) in a picture."""
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return {d.box for d in FakeDetector([FACE_A, FACE_B]).detect(img)}


def _published(s: WebSchool, sha: str) -> dict[str, tuple[list[str], set[Box]]]:
    """channel -> (visible pupils in the ledger, faces unredacted in the file) of the live outputs."""
    out: dict[str, tuple[list[str], set[Box]]] = {}
    rows = s.pipe.store.query(
        "SELECT channel, path, visible_pupils FROM outputs WHERE source_sha256=? AND withdrawn_at IS NULL", (sha,)
    )
    for r in rows:
        out[str(r["channel"])] = (json.loads(r["visible_pupils"]), _faces_in((s.root / r["path"]).read_bytes()))
    return out


def _sha(s: WebSchool) -> str:
    row = s.pipe.store.one("SELECT sha256 FROM quarantine WHERE id=?", (s.qid,))
    assert row is not None
    return str(row["sha256"])


def _post(c: object, s: WebSchool, path: str, **data: str) -> object:
    page = c.get(f"/review/{s.qid}")  # type: ignore[attr-defined]
    return c.post(path, data={"csrf_token": csrf_of(page.text), **data})  # type: ignore[attr-defined]


def _account(s: WebSchool, login: str) -> int:
    u = users.get_user(s.pipe.store, login)
    assert u is not None
    return u.id


def test_the_item_page_shows_the_candidate_by_first_name_and_group_only(school: WebSchool) -> None:
    c = school.login("carla")
    page = c.get(f"/review/{school.qid}").text
    assert "Lijkt op: <strong>Emma</strong> (groep 7)" in page
    assert "Vries" not in page  # never a surname
    assert f'action="/review/{school.qid}/face/1/confirm"' in page and "Dit is Emma" in page
    assert f'action="/review/{school.qid}/face/1/reject-match"' in page
    # face 2 matched nobody: it can be marked "not a face", it has no candidate to confirm
    assert f'action="/review/{school.qid}/face/2/not-a-face"' in page
    assert f'action="/review/{school.qid}/face/2/confirm"' not in page
    assert f'action="/review/{school.qid}/face/1/not-a-face"' not in page


def test_confirm_rerenders_then_approve_shows_the_pupil_only_where_she_has_consent(
    school: WebSchool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    c = school.login("carla")
    before = c.get(f"/review/{school.qid}/preview/newsletter.jpg").content
    assert FACE_A not in _faces_in(before)  # held: redacted in the preview
    r = _post(c, school, f"/review/{school.qid}/face/1/confirm", pupil_id="1001")
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = c.get(f"/review/{school.qid}").text
    assert "bevestigd" in page and "Bevestigd." in page  # the card and the flash
    for ch in HELD:  # re-rendered: visible where Emma has consent
        assert FACE_A in _faces_in(c.get(f"/review/{school.qid}/preview/{ch}.jpg").content), ch
    for ch in ("website", "social"):
        assert FACE_A not in _faces_in(c.get(f"/review/{school.qid}/preview/{ch}.jpg").content), ch
    [row] = audit_rows(school, "review.face")
    assert row["detail"] == {"id": school.qid, "face": 1, "kind": "confirm", "account": _account(school, "carla")}
    assert school.pipe.store.one("SELECT pupil_id FROM audit WHERE event='review.face'")["pupil_id"] == "1001"  # type: ignore[index]
    # the decision survives until approval, and the approval publishes it
    r = _post(c, school, f"/review/{school.qid}/approve")
    assert r.status_code == 303  # type: ignore[attr-defined]
    out = _published(school, _sha(school))
    for ch in HELD:
        assert out[ch][0] == ["1001"], ch
        assert FACE_A in out[ch][1] and FACE_B not in out[ch][1], ch  # the stranger stays redacted
    for ch in ("website", "social"):  # published before with her face redacted; untouched
        assert out[ch] == ([], set()), ch
    text = caplog.text + json.dumps([r["detail"] for r in audit_rows(school, "review.face")])
    assert "Emma" not in text and "Vries" not in text  # ids only in logs and audit


def test_reject_match_makes_the_face_a_stranger(school: WebSchool) -> None:
    c = school.login("pieter")
    _post(c, school, f"/review/{school.qid}/face/1/confirm", pupil_id="1001")
    _post(c, school, f"/review/{school.qid}/face/1/reject-match")  # a change of mind replaces it
    assert FACE_A not in _faces_in(c.get(f"/review/{school.qid}/preview/newsletter.jpg").content)
    assert [r["detail"]["kind"] for r in audit_rows(school, "review.face")] == ["confirm", "stranger"]
    _post(c, school, f"/review/{school.qid}/approve")
    out = _published(school, _sha(school))
    assert set(out) == {*HELD, "website", "social"}
    assert all(v == ([], set()) for v in out.values()), out


def test_not_a_face_removes_the_blob_and_is_audited(school: WebSchool) -> None:
    c = school.login("carla")
    r = _post(c, school, f"/review/{school.qid}/face/2/not-a-face")
    assert r.status_code == 303  # type: ignore[attr-defined]
    [row] = audit_rows(school, "review.face")
    assert row["detail"]["kind"] == "not_a_face" and row["detail"]["account"] == _account(school, "carla")
    assert FACE_B in _faces_in(c.get(f"/review/{school.qid}/preview/newsletter.jpg").content)
    _post(c, school, f"/review/{school.qid}/approve")
    out = _published(school, _sha(school))
    for ch in HELD:  # no fill on the "blob"; the uncertain face is still redacted
        assert out[ch] == ([], {FACE_B}), ch


def test_not_a_face_is_refused_on_a_face_with_a_candidate(school: WebSchool) -> None:
    c = school.login("carla")
    _post(c, school, f"/review/{school.qid}/face/1/not-a-face")
    assert "Dat lukte niet" in c.get(f"/review/{school.qid}").text
    assert audit_rows(school, "review.face") == []
    assert not (school.root / "quarantine" / school.qid / "decisions.json").exists()


def test_confirming_another_pupil_than_the_candidate_is_refused(school: WebSchool) -> None:
    c = school.login("carla")
    _post(c, school, f"/review/{school.qid}/face/1/confirm", pupil_id="1002")
    assert audit_rows(school, "review.face") == []


def test_a_candidate_without_consent_for_a_channel_stays_redacted_there(tmp_path: Path) -> None:
    """Emma without consent for the guide: the guide is not held, and confirming her does not
    show her there (the eligibility rule decides, not the reviewer)."""
    s = make_web_school(tmp_path)
    no_guide = list(EMMA)
    no_guide[8] = "nee"  # schoolgids
    (s.root / "c2.csv").write_text(consent_csv([tuple(no_guide)]), encoding="utf-8")
    import_csv(s.pipe.store, s.root / "c2.csv")
    s.pipe.templates = _near()  # type: ignore[assignment]
    held = s.pipe.process_path(make_photo(s.root / "inbox" / "juf-anne" / "kamp.jpg", seed=11), uploader="juf-anne")
    assert held.quarantine_id and set(held.held_channels) == {"newsletter", "parro"}
    c = s.login("carla")
    page = c.get(f"/review/{held.quarantine_id}")
    c.post(
        f"/review/{held.quarantine_id}/face/1/confirm",
        data={"csrf_token": csrf_of(page.text), "pupil_id": "1001"},
    )
    assert FACE_A not in _faces_in(c.get(f"/review/{held.quarantine_id}/preview/guide.jpg").content)
    assert FACE_A in _faces_in(c.get(f"/review/{held.quarantine_id}/preview/parro.jpg").content)
    c.post(f"/review/{held.quarantine_id}/approve", data={"csrf_token": csrf_of(page.text)})
    assert held.sha256
    out = _published(s, held.sha256)
    assert out["newsletter"][0] == out["parro"][0] == ["1001"]
    assert out["guide"] == ([], set())


NEW_POSTS = (
    ("face/1/confirm", {"pupil_id": "1001"}),
    ("face/1/reject-match", {}),
    ("face/2/not-a-face", {}),
)


@pytest.mark.parametrize(("path", "extra"), NEW_POSTS)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_every_decision_needs_the_csrf_token(
    school: WebSchool, path: str, extra: dict[str, str], token: str | None
) -> None:
    c = school.login("carla")
    data = dict(extra) if token is None else {**extra, "csrf_token": token}
    r = c.post(f"/review/{school.qid}/{path}", data=data)
    assert r.status_code == 403
    assert audit_rows(school, "review.face") == []


@pytest.mark.parametrize("action", ["confirm", "dismiss"])
def test_optional_actions_need_the_csrf_token(school: WebSchool, action: str) -> None:
    c = school.login("carla")
    r = c.post(f"/review/optional/{school.anne_sha}/{action}", data={"box": "40,40,120,130", "pupil_id": "1001"})
    assert r.status_code == 403


@pytest.mark.parametrize("login", ["anne", "ad"])
def test_other_roles_get_403_on_every_new_page_and_action(school: WebSchool, login: str) -> None:
    c = school.login(login)
    token = csrf_of(c.get("/", follow_redirects=True).text)
    assert c.get("/review/optional").status_code == 403
    assert c.get(f"/review/optional/{school.anne_sha}/newsletter.jpg").status_code == 403
    for path, extra in NEW_POSTS:
        assert c.post(f"/review/{school.qid}/{path}", data={"csrf_token": token, **extra}).status_code == 403
    for action in ("confirm", "dismiss"):
        r = c.post(
            f"/review/optional/{school.anne_sha}/{action}",
            data={"csrf_token": token, "box": "40,40,120,130", "pupil_id": "1001"},
        )
        assert r.status_code == 403
    assert audit_rows(school, "review.face") == []


def test_names_are_escaped_on_the_item_page(tmp_path: Path) -> None:
    s = make_web_school(tmp_path)
    hostile = list(EMMA)
    hostile[1] = "<script>alert(1)</script>"
    hostile[4] = '7"><img src=x>'
    (s.root / "c2.csv").write_text(consent_csv([tuple(hostile)]), encoding="utf-8")
    import_csv(s.pipe.store, s.root / "c2.csv")
    page = s.login("carla").get(f"/review/{s.qid}").text
    assert "<script>alert(1)</script>" not in page and "<img src=x>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- the optional list ----------------------------------------------------------------------
@pytest.fixture
def redacted_school(tmp_path: Path) -> tuple[WebSchool, str]:
    """Near matches are redacted and published at once (``near_match = "redact"``), originals kept
    in the vault; one photo with Emma's near match published on every channel."""
    s = make_web_school(tmp_path)
    for old, new in (('near_match = "hold"', 'near_match = "redact"'), ('action = "delete"', 'action = "vault"')):
        cfg = s.root / "photoguard.toml"
        cfg.write_text(cfg.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    from photoguard.config import load_settings
    from photoguard.photo.pipeline import Pipeline
    from tests.support.text import FakeTextFinder

    pipe = Pipeline(
        s.root, load_settings(s.root), store=s.pipe.store, detector=FakeDetector([FACE_A, FACE_B]),
        templates=_near(), text=FakeTextFinder(), today=s.pipe.today,  # type: ignore[arg-type]
    )
    res = pipe.process_path(make_photo(s.root / "inbox" / "juf-anne" / "musical.jpg", seed=21), uploader="juf-anne")
    assert res.status.value == "published" and res.sha256
    s.pipe = pipe
    s.app = s.new_app()
    return s, res.sha256


def test_the_pipeline_lists_redacted_consenting_pupils_and_confirm_republishes(
    redacted_school: tuple[WebSchool, str],
) -> None:
    s, sha = redacted_school
    rows = s.pipe.store.query("SELECT channel, pupil_id FROM optional_faces WHERE sha256=?", (sha,))
    assert sorted((r["channel"], r["pupil_id"]) for r in rows) == sorted((ch, "1001") for ch in HELD)
    before = {ch: p for ch, p in ledger.live_outputs(s.pipe.store, sha).items()}
    c = s.login("carla")
    page = c.get("/review/optional")
    assert page.status_code == 200
    assert "<strong>Emma</strong> (groep 7)" in page.text and "Vries" not in page.text
    assert f"/review/optional/{sha}/newsletter.jpg" in page.text
    assert c.get(f"/review/optional/{sha}/newsletter.jpg").status_code == 200
    r = c.post(
        f"/review/optional/{sha}/confirm",
        data={"csrf_token": csrf_of(page.text), "box": "40,40,120,130", "pupil_id": "1001"},
    )
    assert r.status_code == 303
    out = _published(s, sha)
    for ch in HELD:
        assert out[ch][0] == ["1001"] and FACE_A in out[ch][1] and FACE_B not in out[ch][1], ch
        assert not (s.root / before[ch]).exists(), ch  # the old file is replaced
    for ch in ("website", "social"):
        assert out[ch] == ([], set()), ch
        assert ledger.live_outputs(s.pipe.store, sha)[ch] == before[ch]  # untouched
    assert "Er is niets om na te kijken." in c.get("/review/optional").text
    [ev] = audit_rows(s, "optional.confirmed")
    assert ev["detail"] == {"account": _account(s, "carla"), "channels": sorted(HELD)}
    assert len(audit_rows(s, "output.replaced")) == 3


def test_dismiss_closes_the_optional_face_and_publishes_nothing(redacted_school: tuple[WebSchool, str]) -> None:
    s, sha = redacted_school
    before = ledger.live_outputs(s.pipe.store, sha)
    c = s.login("pieter")
    page = c.get("/review/optional")
    c.post(
        f"/review/optional/{sha}/dismiss",
        data={"csrf_token": csrf_of(page.text), "box": "40,40,120,130", "pupil_id": "1001"},
    )
    assert "Er is niets om na te kijken." in c.get("/review/optional").text
    assert ledger.live_outputs(s.pipe.store, sha) == before
    assert [r["detail"] for r in audit_rows(s, "optional.dismissed")] == [{"account": _account(s, "pieter")}]


def test_a_forged_optional_face_is_refused(redacted_school: tuple[WebSchool, str]) -> None:
    s, sha = redacted_school
    before = ledger.live_outputs(s.pipe.store, sha)
    c = s.login("carla")
    page = c.get("/review/optional")
    token = csrf_of(page.text)
    for box, pupil in (("200,50,280,140", "1001"), ("40,40,120,130", "1002")):
        c.post(f"/review/optional/{sha}/confirm", data={"csrf_token": token, "box": box, "pupil_id": pupil})
    assert ledger.live_outputs(s.pipe.store, sha) == before
    assert audit_rows(s, "optional.confirmed") == []
    assert c.post(
        f"/review/optional/{sha}/confirm", data={"csrf_token": csrf_of(page.text), "box": "../x", "pupil_id": "1"}
    ).status_code == 400


def test_the_optional_list_follows_current_consent(redacted_school: tuple[WebSchool, str]) -> None:
    """Emma withdraws consent for the newsletter: it is no longer offered there, and a confirm
    renders only the channels where she may still be shown."""
    from photoguard.ledger.consent import Registry

    s, sha = redacted_school
    Registry(s.pipe.store).set_consent("1001", "newsletter", False, source="test")
    before = ledger.live_outputs(s.pipe.store, sha)
    c = s.login("carla")
    page = c.get("/review/optional").text
    assert "kan zichtbaar op: Parro, Schoolgids" in page
    c.post(
        f"/review/optional/{sha}/confirm",
        data={"csrf_token": csrf_of(page), "box": "40,40,120,130", "pupil_id": "1001"},
    )
    out = _published(s, sha)
    assert out["parro"][0] == out["guide"][0] == ["1001"]
    assert out["newsletter"] == ([], set())
    assert ledger.live_outputs(s.pipe.store, sha)["newsletter"] == before["newsletter"]  # untouched


def test_confirm_with_learn_keeps_a_template_for_a_pupil_with_face_matching(school: WebSchool) -> None:
    vault = school.pipe.template_vault()
    before = vault.count("1001")
    c = school.login("carla")
    _post(c, school, f"/review/{school.qid}/face/1/confirm", pupil_id="1001")  # without the tick: none kept
    assert vault.count("1001") == before
    _post(c, school, f"/review/{school.qid}/face/1/reject-match")
    _post(c, school, f"/review/{school.qid}/face/1/confirm", pupil_id="1001", learn="1")
    assert vault.count("1001") == before + 1
    [ev] = audit_rows(school, "review.template")
    assert ev["detail"]["account"] == _account(school, "carla") and ev["detail"]["added"] is True


def test_decisions_survive_a_partial_approval_until_the_rest_is_approved(school: WebSchool) -> None:
    c = school.login("carla")
    _post(c, school, f"/review/{school.qid}/face/1/confirm", pupil_id="1001")
    _post(c, school, f"/review/{school.qid}/face/2/not-a-face")
    _post(c, school, f"/review/{school.qid}/approve", channel="newsletter")
    sha = _sha(school)
    assert _published(school, sha)["newsletter"] == (["1001"], {FACE_A, FACE_B})
    page = c.get(f"/review/{school.qid}").text
    assert "bevestigd" in page and 'value="parro"' in page  # still held for the rest, still confirmed
    _post(c, school, f"/review/{school.qid}/approve")
    out = _published(school, sha)
    assert out["parro"] == out["guide"] == (["1001"], {FACE_A, FACE_B})
    assert not (school.root / "quarantine" / school.qid).exists()  # decisions go with the original


def test_a_published_channel_keeps_what_it_was_published_with(school: WebSchool) -> None:
    """Website was published at once (Emma has no consent there): a "not a face" mark changes the
    held channels only, so the website preview still shows the fill it was published with."""
    c = school.login("carla")
    _post(c, school, f"/review/{school.qid}/face/2/not-a-face")
    assert FACE_B in _faces_in(c.get(f"/review/{school.qid}/preview/newsletter.jpg").content)
    assert FACE_B not in _faces_in(c.get(f"/review/{school.qid}/preview/website.jpg").content)
    assert "Website: onherkenbaar" in c.get(f"/review/{school.qid}").text


def test_odd_url_parameters_of_the_new_routes_answer_404(school: WebSchool) -> None:
    c = school.login("carla")
    page = c.get(f"/review/{school.qid}").text
    token = csrf_of(page)
    for path in (
        f"/review/{school.qid}/face/0/confirm",
        f"/review/{school.qid}/face/99/confirm",
        f"/review/{school.qid}/face/-1/reject-match",
        f"/review/{school.qid}/face/1x/reject-match",
        f"/review/{school.qid}/face/1/approve",
        "/review/..%2F..%2Fstate/face/1/reject-match",
        f"/review/optional/{school.anne_sha}/rm",
    ):
        r = c.post(path, data={"csrf_token": token, "pupil_id": "1001", "box": "1,2,3,4"})
        assert r.status_code in (303, 404), path
        assert audit_rows(school, "review.face") == [], path
    for path in (
        "/review/optional/..%2F..%2Fstate%2Fphotoguard.key/newsletter.jpg",
        f"/review/optional/{school.anne_sha}/..%2F..%2Fstate.jpg",
        f"/review/optional/{school.anne_sha}/nochannel.jpg",
    ):
        assert c.get(path).status_code == 404, path


def test_an_approval_that_cannot_be_written_says_why_and_keeps_the_photo_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A channel folder that cannot take the file (read-only, disk full): the reviewer reads why
    in Dutch, the photo stays held with its original, and approving later publishes it."""
    import errno
    import os
    from typing import Any

    from photoguard import fsutil

    school = make_web_school(tmp_path)
    c = school.login("carla")
    real = fsutil.write_temp
    parro = school.root / "outbox" / "parro"

    def read_only(where: Path, data: bytes, **kw: Any) -> Path:
        if Path(where) == parro:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(where) / fsutil.temp_name()))
        return real(where, data, **kw)

    monkeypatch.setattr(fsutil, "write_temp", read_only)
    page = c.get(f"/review/{school.qid}").text
    r = c.post(f"/review/{school.qid}/approve", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == f"/review/{school.qid}"
    after = c.get(f"/review/{school.qid}").text
    assert "Goedgekeurd, maar niet gepubliceerd" in after
    assert "outbox/parro" in after and "niet beschrijfbaar" in after
    assert (school.root / "quarantine" / school.qid).exists()
    assert [e["detail"]["id"] for e in audit_rows(school, "web.approve_failed")] == [school.qid]
    monkeypatch.undo()
    r = c.post(f"/review/{school.qid}/approve", data={"csrf_token": csrf_of(after)})
    assert r.status_code == 303 and r.headers["location"] == "/review"
    assert not (school.root / "quarantine" / school.qid).exists()

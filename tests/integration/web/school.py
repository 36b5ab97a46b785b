"""A school with a web app in front of it, for the web tests: one held photo (a near match of
Emma), one published upload from juf-anne's folder and one from meester-bob's, and four accounts."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from photoguard.ledger import users
from photoguard.ledger.users import Role
from photoguard.photo.pipeline import Pipeline
from photoguard.web.app import create_app
from photoguard.web.passwords import hash_password
from tests.support.models import FACE_A, FACE_B, FakeTemplates, fake_vector
from tests.support.photos import make_photo
from tests.support.school import make_school
from tests.support.shared import REPO

PASSWORD = "correct horse battery"
#: login -> (role, folders)
ACCOUNTS: dict[str, tuple[Role, tuple[str, ...]]] = {
    "anne": (Role.TEACHER, ("juf-anne",)),
    "bob": (Role.TEACHER, ("meester-bob",)),
    "carla": (Role.COMMS, ()),
    "pieter": (Role.PRIVACY, ()),
    "ad": (Role.ADMIN, ()),
}


class Clock:
    """Seconds that only move when a test moves them."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class WebSchool:
    root: Path
    pipe: Pipeline
    qid: str  # the held photo
    anne_sha: str  # published from juf-anne's folder
    bob_sha: str  # published from meester-bob's folder
    clock: Clock
    app: Starlette

    def client(self, **kw: object) -> TestClient:
        return TestClient(self.app, follow_redirects=False, **kw)  # type: ignore[arg-type]

    def login(self, login: str, password: str = PASSWORD, **kw: object) -> TestClient:
        c = self.client(**kw)
        r = c.post("/login", data={"username": login, "password": password, "csrf_token": login_token(c)})
        assert r.status_code == 303, r.text
        return c

    def new_app(self, **kw: object) -> Starlette:
        return create_app(self.root, self.pipe.settings, lambda _r, _s: self.pipe, store=self.pipe.store, **kw)  # type: ignore[arg-type]


def login_token(c: TestClient) -> str:
    page = c.get("/login")
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m, page.text
    return m.group(1)


def csrf_of(page_html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert m, page_html
    return m.group(1)


def make_web_school(tmp_path: Path, idle_seconds: float = 1800.0) -> WebSchool:
    root, pipe = make_school(tmp_path)
    anne = make_photo(root / "inbox" / "juf-anne" / "gym.jpg", seed=3)
    bob = make_photo(root / "inbox" / "meester-bob" / "tekenen.jpg", seed=4)
    ra = pipe.process_path(anne, uploader="juf-anne")
    rb = pipe.process_path(bob, uploader="meester-bob")
    assert ra.status.value == rb.status.value == "published"
    # a near match of Emma: held for the channels where she has consent
    exact = pipe.templates
    pipe.templates = FakeTemplates({FACE_A: fake_vector(1) + fake_vector(7), FACE_B: fake_vector(2)})  # type: ignore[assignment]
    held = pipe.process_path(make_photo(root / "inbox" / "juf-anne" / "schoolreis.jpg", seed=7), uploader="juf-anne")
    assert held.status.value == "held" and held.quarantine_id
    pipe.templates = exact
    for login, (role, folders) in ACCOUNTS.items():
        users.add_user(pipe.store, login, role, folders, hash_password(PASSWORD))
    clock = Clock()
    app = create_app(root, pipe.settings, lambda _r, _s: pipe, store=pipe.store, idle_seconds=idle_seconds, clock=clock)
    assert ra.sha256 and rb.sha256
    return WebSchool(root, pipe, held.quarantine_id, ra.sha256, rb.sha256, clock, app)


def audit_rows(school: WebSchool, event: str) -> list[dict[str, object]]:
    import json

    rows = school.pipe.store.query("SELECT event, photo_sha256, channel, detail FROM audit WHERE event=?", (event,))
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


FAKE_CLI = REPO / "tests" / "support" / "fake_cli.py"


def _listening_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0].decode()
        if proc.poll() is not None:
            break
    raise AssertionError(f"photoguard web did not start: {buf!r}")


@contextmanager
def web_server(root: Path, near: bool = False) -> Iterator[str]:
    """``photoguard web`` (fake face models) as a subprocess on a free loopback port; yields its
    base URL; stopped with SIGTERM by PID, which must end it with exit 0. ``near``: the server's
    models see FACE_A as a near match of pupil 1001 (see ``fake_cli.py``)."""
    models = ["--near"] if near else []
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_CLI), *models, "--", "--root", str(root), "web", "--listen", "127.0.0.1:0"],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        line = _listening_line(proc, time.monotonic() + 60)
        assert line.startswith("listening on http://127.0.0.1:")
        yield line.removeprefix("listening on ").strip()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

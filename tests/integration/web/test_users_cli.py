"""``photoguard user add|list|remove|passwd``: the password from standard input, only its scrypt
hash stored, exit codes for wrong input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from photoguard.cli.app import main
from photoguard.ledger import users
from photoguard.ledger.db import Store
from photoguard.web.passwords import verify_password
from tests.support.school import init_school


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return init_school(tmp_path / "school")


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(argv)


def test_add_list_passwd_remove(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    r = ["--root", str(root)]
    assert (
        _run(
            monkeypatch, [*r, "user", "add", "anne", "--role", "teacher", "--folder", "juf-anne"], "lange wachtzin 1\n"
        )
        == 0
    )
    assert _run(monkeypatch, [*r, "user", "add", "carla", "--role", "comms"], "nog een wachtzin\n") == 0
    capsys.readouterr()
    assert _run(monkeypatch, [*r, "user", "list"]) == 0
    out = capsys.readouterr().out
    assert "anne" in out and "teacher" in out and "juf-anne" in out and "carla" in out and "comms" in out
    assert "wachtzin" not in out
    store = Store(root / "state" / "photoguard.sqlite3")
    anne = users.get_user(store, "anne")
    assert anne is not None and anne.password_hash.startswith("scrypt$")
    assert verify_password("lange wachtzin 1", anne.password_hash)
    assert not verify_password("lange wachtzin 2", anne.password_hash)
    raw = (root / "state" / "photoguard.sqlite3").read_bytes()
    assert b"lange wachtzin" not in raw
    assert _run(monkeypatch, [*r, "user", "passwd", "anne"], "een nieuwe wachtzin\n") == 0
    anne2 = users.get_user(store, "anne")
    assert anne2 is not None and verify_password("een nieuwe wachtzin", anne2.password_hash)
    assert _run(monkeypatch, [*r, "user", "remove", "anne"]) == 0
    assert users.get_user(store, "anne") is None
    assert _run(monkeypatch, [*r, "user", "remove", "anne"]) == 1
    assert _run(monkeypatch, [*r, "user", "passwd", "anne"], "een nieuwe wachtzin\n") == 1
    store.close()


@pytest.mark.parametrize(
    ("argv", "stdin", "code"),
    [
        (["user", "add", "anne", "--role", "teacher"], "lange wachtzin 1\n", 2),  # a teacher needs a folder
        (["user", "add", "carla", "--role", "comms", "--folder", "x"], "lange wachtzin 1\n", 2),
        (["user", "add", "anne", "--role", "teacher", "--folder", "../state"], "lange wachtzin 1\n", 2),
        (["user", "add", "Anne Smit", "--role", "comms"], "lange wachtzin 1\n", 2),
        (["user", "add", "carla", "--role", "comms"], "kort\n", 2),
        (["user", "add", "carla", "--role", "comms"], "", 2),
    ],
)
def test_wrong_input_is_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str, code: int
) -> None:
    assert _run(monkeypatch, ["--root", str(root), *argv], stdin) == code
    store = Store(root / "state" / "photoguard.sqlite3")
    assert users.list_users(store) == []
    store.close()


def test_a_taken_login_and_a_bad_role(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = ["--root", str(root)]
    assert _run(monkeypatch, [*r, "user", "add", "carla", "--role", "comms"], "lange wachtzin 1\n") == 0
    assert _run(monkeypatch, [*r, "user", "add", "carla", "--role", "privacy"], "lange wachtzin 1\n") == 1
    with pytest.raises(SystemExit) as exc:
        _run(monkeypatch, [*r, "user", "add", "x", "--role", "root"], "lange wachtzin 1\n")
    assert exc.value.code == 2

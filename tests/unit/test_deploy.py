"""The systemd units in deploy/: keys in the section systemd reads them from, commands the CLI accepts,
documentation links that exist."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from photoguard.cli.app import build_parser

REPO = Path(__file__).resolve().parents[2]
UNITS = sorted((REPO / "deploy").glob("*.service"))
#: keys that systemd only honours in [Unit] (in [Service] they are ignored with a warning)
UNIT_ONLY = {"StartLimitIntervalSec", "StartLimitBurst", "Documentation", "After", "Wants", "Requires"}


def _sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            out.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        out.setdefault(current, []).append((key.strip(), value.strip()))
    return out


def test_there_are_units_for_watch_and_dns() -> None:
    assert {p.name for p in UNITS} >= {"photoguard-watch.service", "photoguard-dns.service", "photoguard-web.service"}


def test_the_install_guide_creates_the_service_user_and_imports_consent_before_starting() -> None:
    guide = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    assert "useradd --system" in guide and "photoguard init" in guide
    # watch refuses a registry without pupils: the guide imports the list before enabling units
    assert guide.index("consent import") < guide.index("systemctl enable")


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_keys_are_in_the_right_section(unit: Path) -> None:
    sections = _sections(unit)
    assert set(sections) == {"Unit", "Service", "Install"}
    assert "" not in sections
    for key, _ in sections["Service"]:
        assert key not in UNIT_ONLY, f"{unit.name}: {key} belongs in [Unit]"
    assert {k for k, _ in sections["Unit"]} >= {"StartLimitIntervalSec", "StartLimitBurst"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_commands_parse_and_docs_exist(unit: Path) -> None:
    sections = _sections(unit)
    exec_start = dict(sections["Service"])["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/photoguard")
    args = build_parser().parse_args(argv[1:])
    assert getattr(args, "func", None) is not None
    text = unit.read_text(encoding="utf-8")
    for word in text.split():
        if "docs/" in word and word.endswith(".md"):
            rel = word[word.index("docs/") :].rstrip(").,")
            assert (REPO / rel).is_file(), f"{unit.name} links {rel}, which does not exist"

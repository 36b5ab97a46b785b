"""The command line's contract: every command, option, help text and default, pinned.

``tests/data/cli_contract.json`` is a snapshot of the whole argument parser tree (``photoguard
--help`` and every sub-command's ``--help``): command names in help order, their help lines,
each option's flags, metavar, choices, default, type, nargs and handler. Refactoring the CLI must
leave it identical; a deliberate change to the contract regenerates it with
``python tests/unit/test_cli_contract.py --write`` and shows up in review as a diff of that file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "src") not in sys.path:  # when run as a script to regenerate the snapshot
    sys.path.insert(0, str(REPO / "src"))

from photoguard.cli.app import build_parser  # noqa: E402

SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "cli_contract.json"


def _value(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if v is argparse.SUPPRESS:
        return "==SUPPRESS=="
    if isinstance(v, list | tuple):
        return [_value(x) for x in v]
    return getattr(v, "__name__", type(v).__name__)


def describe(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """One parser as plain data: its texts, its options in order, its sub-commands recursively."""
    doc: dict[str, Any] = {
        "prog": parser.prog,
        "description": parser.description,
        "defaults": {k: _value(v) for k, v in sorted(parser._defaults.items())},
        "options": [],
    }
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            doc["subcommands"] = {
                "dest": action.dest,
                "metavar": action.metavar,
                "required": action.required,
                "order": list(action.choices),
                "commands": {name: {"help": helps.get(name), **describe(sub)} for name, sub in action.choices.items()},
            }
            continue
        doc["options"].append(
            {
                "kind": type(action).__name__,
                "flags": list(action.option_strings),
                "dest": action.dest,
                "metavar": _value(action.metavar),
                "nargs": _value(action.nargs),
                "const": _value(action.const),
                "default": _value(action.default),
                "type": _value(action.type),
                "choices": _value(list(action.choices)) if action.choices is not None else None,
                "required": action.required,
                "help": _value(action.help),
            }
        )
    return doc


def snapshot() -> dict[str, Any]:
    return describe(build_parser())


def flatten(doc: dict[str, Any], prefix: str = "photoguard") -> dict[str, dict[str, Any]]:
    """``{"photoguard review list": its parser without the sub-commands, ...}`` in help order."""
    subs = doc.get("subcommands", {})
    own = {k: v for k, v in doc.items() if k != "subcommands"}
    if subs:
        own["subcommands"] = {k: v for k, v in subs.items() if k != "commands"}
    out = {prefix: own}
    for name, sub in subs.get("commands", {}).items():
        out.update(flatten(sub, f"{prefix} {name}"))
    return out


def test_the_parser_matches_the_pinned_contract() -> None:
    expected = flatten(json.loads(SNAPSHOT.read_text(encoding="utf-8")))
    actual = flatten(json.loads(json.dumps(snapshot())))
    assert list(actual) == list(expected), "commands added, removed or reordered"
    for path, doc in expected.items():
        assert actual[path] == doc, f"`{path} --help` changed"


def test_the_snapshot_covers_every_command_group() -> None:
    paths = flatten(json.loads(SNAPSHOT.read_text(encoding="utf-8")))
    for cmd in ("init", "process", "watch", "review list", "consent stale", "report privacy", "dns stats"):
        assert f"photoguard {cmd}" in paths, cmd


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/unit/test_cli_contract.py --write")
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")

"""``photoguard init`` and ``photoguard check-config``: a root folder and its configuration."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from photoguard.cli.exitcodes import EXIT_OK
from photoguard.config import CONFIG_NAME

if TYPE_CHECKING:
    from photoguard.cli.app import Context, SubParsers


def add_init(sub: SubParsers) -> None:
    p = sub.add_parser("init", help="create a root with inbox/ outbox/ quarantine/ state/ and a config")
    p.add_argument("path", help="the root folder to create")
    p.set_defaults(func=cmd_init, needs_config=False)


def add_check_config(sub: SubParsers) -> None:
    p = sub.add_parser("check-config", help="validate photoguard.toml and name every error's key path")
    p.set_defaults(func=cmd_check_config)


def cmd_init(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.service.setup import init_root

    root = Path(args.path).expanduser().resolve()
    created = init_root(root)
    print(f"photoguard root ready at {root}")
    for p in created:
        print(f"  created {p}")
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace, ctx: Context) -> int:
    s = ctx.settings  # raises ConfigError, reported by main()
    print(f"{ctx.root / CONFIG_NAME}: OK ({len(s.channels)} channels: {', '.join(c.name for c in s.channels)})")
    return EXIT_OK

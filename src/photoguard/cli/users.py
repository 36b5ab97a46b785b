"""``photoguard user add|list|remove|passwd``: the accounts of the web app (``photoguard web``).

The password comes from standard input (the first line), or is asked twice without echo when
standard input is a terminal. It is never an argument: arguments show up in ``ps`` and shell history.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from typing import TYPE_CHECKING

from photoguard.cli.exitcodes import EXIT_FAIL, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from photoguard.cli.app import Context, SubParsers

ROLES = ("teacher", "comms", "privacy", "admin")
_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_FOLDER = re.compile(r"^[^/\\\x00]{1,128}$")


def add_user(sub: SubParsers) -> None:
    user = sub.add_parser("user", help="web app accounts: add, list, remove, passwd")
    usub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    p = usub.add_parser("add", help="create an account (password from standard input or prompted)")
    p.add_argument("login", help="lower-case letters, digits, '.', '_' or '-'")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--folder", action="append", default=[], metavar="F", help="a teacher's inbox folder (repeatable)")
    p.set_defaults(func=cmd_user_add)
    p = usub.add_parser("list", help="the accounts, their roles and folders")
    p.set_defaults(func=cmd_user_list)
    p = usub.add_parser("remove", help="delete an account")
    p.add_argument("login")
    p.set_defaults(func=cmd_user_remove)
    p = usub.add_parser("passwd", help="set a new password (from standard input or prompted)")
    p.add_argument("login")
    p.set_defaults(func=cmd_user_passwd)


def _read_password() -> str | None:
    """The new password: prompted twice in a terminal, else the first line of standard input."""
    from photoguard.web.passwords import check_new_password

    if sys.stdin.isatty():
        first = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != first:
            print("the two passwords differ", file=sys.stderr)
            return None
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = check_new_password(password)
    if problem:
        print(problem, file=sys.stderr)
        return None
    return password


def cmd_user_add(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.ledger import users
    from photoguard.ledger.db import Store
    from photoguard.web.passwords import hash_password

    if not _LOGIN.match(args.login):
        print("the login must be lower-case letters, digits, '.', '_' or '-' (at most 64)", file=sys.stderr)
        return EXIT_USAGE
    role = users.Role(args.role)
    folders = tuple(dict.fromkeys(args.folder))
    if role is users.Role.TEACHER and not folders:
        print("a teacher needs at least one --folder (their inbox folder)", file=sys.stderr)
        return EXIT_USAGE
    if role is not users.Role.TEACHER and folders:
        print("--folder is for teachers only", file=sys.stderr)
        return EXIT_USAGE
    for f in folders:
        if not _FOLDER.match(f) or f in (".", ".."):
            print(f"not a folder name: {f!r} (one folder under inbox/, no '/')", file=sys.stderr)
            return EXIT_USAGE
    store = Store(ctx.layout.db)
    try:
        if users.get_user(store, args.login) is not None:
            print(f"an account named {args.login!r} already exists", file=sys.stderr)
            return EXIT_FAIL
        password = _read_password()
        if password is None:
            return EXIT_USAGE
        try:
            user = users.add_user(store, args.login, role, folders, hash_password(password))
        except users.UserError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_FAIL
        missing = [f for f in folders if not (ctx.layout.inbox / f).is_dir()]
        if missing:
            print(f"note: no inbox folder {', '.join(missing)} yet", file=sys.stderr)
    finally:
        store.close()
    print(f"account {user.login} ({user.role.value}) created")
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.ledger import users
    from photoguard.ledger.db import Store

    store = Store(ctx.layout.db)
    try:
        accounts = users.list_users(store)
    finally:
        store.close()
    if not accounts:
        print("no accounts; add one with: photoguard user add LOGIN --role ROLE")
        return EXIT_OK
    for u in accounts:
        folders = ",".join(u.folders) or "-"
        print(f"{u.login:24} {u.role.value:8} folders: {folders}")
    return EXIT_OK


def cmd_user_remove(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.ledger import users
    from photoguard.ledger.db import Store

    store = Store(ctx.layout.db)
    try:
        removed = users.remove_user(store, args.login)
    finally:
        store.close()
    if not removed:
        print(f"no account named {args.login!r}", file=sys.stderr)
        return EXIT_FAIL
    print(f"account {args.login} removed (its open sessions end at their next request)")
    return EXIT_OK


def cmd_user_passwd(args: argparse.Namespace, ctx: Context) -> int:
    from photoguard.ledger import users
    from photoguard.ledger.db import Store
    from photoguard.web.passwords import hash_password

    store = Store(ctx.layout.db)
    try:
        if users.get_user(store, args.login) is None:
            print(f"no account named {args.login!r}", file=sys.stderr)
            return EXIT_FAIL
        password = _read_password()
        if password is None:
            return EXIT_USAGE
        users.set_password(store, args.login, hash_password(password))
    finally:
        store.close()
    print(f"password of {args.login} changed (its open sessions end at their next request)")
    return EXIT_OK

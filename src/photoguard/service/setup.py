"""``photoguard init``: the folder layout and a fully commented config generated from the model."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from photoguard.config import CONFIG_NAME, Layout, Settings
from photoguard.ledger import keys
from photoguard.ledger.db import Store
from photoguard.ledger.templates import TemplateVault

HEADER = """\
# photoguard configuration. Every key is optional: the value shown is the default.
# Unknown keys are errors; check with: photoguard check-config
"""


def _toml_value(v: Any) -> str:
    if isinstance(v, Enum):
        v = v.value
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list) and all(not isinstance(x, BaseModel) for x in v):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot render {v!r}")


def _render_table(model: BaseModel, path: str, array: bool = False) -> list[str]:
    lines: list[str] = []
    fields = type(model).model_fields
    scalars = [n for n in fields if not _is_table(getattr(model, n))]
    tables = [n for n in fields if _is_table(getattr(model, n))]
    if path and (scalars or array):
        lines.append("")
        lines.append(f"[[{path}]]" if array else f"[{path}]")
    for name in scalars:
        desc = fields[name].description
        if desc:
            lines.append(f"# {desc}")
        lines.append(f"{name} = {_toml_value(getattr(model, name))}")
    for name in tables:
        value = getattr(model, name)
        sub = f"{path}.{name}" if path else name
        desc = fields[name].description
        if isinstance(value, list):
            if desc:
                lines.extend(["", f"# {sub}: {desc}"])
            for item in value:
                lines.extend(_render_table(item, sub, array=True))
        else:
            lines.extend(_render_table(value, sub))
    return lines


def _is_table(v: Any) -> bool:
    return isinstance(v, BaseModel) or (isinstance(v, list) and bool(v) and isinstance(v[0], BaseModel))


def example_toml() -> str:
    """The default configuration as commented TOML (also committed as config/photoguard.example.toml)."""
    return HEADER + "\n".join(_render_table(Settings(), "")).lstrip("\n") + "\n"


def init_root(root: Path) -> list[Path]:
    """Create the folder layout, a default config, the key file and the database (idempotent)."""
    created: list[Path] = []
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / CONFIG_NAME
    if not cfg.exists():
        cfg.write_text(example_toml(), encoding="utf-8")
        created.append(cfg)
    settings = Settings()
    layout = Layout(root, settings)
    for folder in (layout.inbox, layout.outbox, layout.quarantine, layout.state):
        if not folder.exists():
            folder.mkdir(parents=True)
            created.append(folder)
    for ch in settings.channels:
        layout.channel_dir(ch.name).mkdir(parents=True, exist_ok=True)
    for private in (layout.state, layout.quarantine, layout.vault):  # names, consent, originals
        if private.is_dir() and not private.is_symlink():
            private.chmod(0o700)
    if os.path.lexists(layout.db):
        Store(layout.db, advice=INIT_ADVICE).close()  # an existing database must be sound: never replaced
    if not os.path.lexists(layout.key):
        encrypted = _encrypted_data(layout)
        if encrypted:
            raise keys.KeyError_(f"{keys.missing_key_message(layout.key)} (found: {encrypted})")
        keys.create_key_file(layout.key)
        created.append(layout.key)
    if not os.path.lexists(layout.db):
        Store(layout.db, create=True).close()
        created.append(layout.db)
    return created


#: what ``init`` says about an existing database it cannot use
INIT_ADVICE = (
    "'photoguard init' never replaces an existing database. Restore it from your backup; only if "
    "this is a new school with nothing in it yet, delete the file and run init again."
)


def _encrypted_data(layout: Layout) -> str:
    """What in this root is encrypted with the (missing) master key: '' when nothing is."""
    found: list[str] = []
    if os.path.lexists(layout.db):
        store = Store(layout.db)
        try:
            holders = TemplateVault.holders(store)
        finally:
            store.close()
        if holders:
            found.append(f"face templates of {len(holders)} pupil(s) in {layout.db}")
    if layout.vault.is_dir():
        n = sum(1 for e in os.scandir(layout.vault) if e.name.endswith(".enc"))
        if n:
            found.append(f"{n} encrypted original(s) in {layout.vault}")
    return "; ".join(found)


if __name__ == "__main__":  # regenerate config/photoguard.example.toml
    import sys

    sys.stdout.write(example_toml())

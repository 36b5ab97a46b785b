"""What happens after consent changes: biometric data destroyed, published files withdrawn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from photoguard.biometrics import TemplateVault
from photoguard.consent import Change
from photoguard.store import Store


def after_changes(ctx: Any, changes: Sequence[Change]) -> list[str]:
    """Apply the consequences of ``changes``; returns lines for the user."""
    lines: list[str] = []
    store = Store(ctx.layout.db)
    gone = sorted(
        {
            c.pupil_id
            for c in changes
            if (c.key == "face_matching" and c.new is False) or (c.key == "left_on" and c.new)
        }
    )
    for pid in gone:
        with store.transaction() as conn:
            n = TemplateVault.destroy_in(conn, pid, "face_matching withdrawn or pupil left")
        store.checkpoint()
        if n:
            lines.append(f"destroyed {n} face template(s) of pupil {pid}")
    return lines

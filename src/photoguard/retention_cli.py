"""Commands for consent follow-up and retention (sweep, takedown, report, classlist)."""

from __future__ import annotations

import argparse


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    consent_sub: argparse._SubParsersAction,  # type: ignore[type-arg]
) -> None:
    """Add the retention command groups to the main parser (and ``consent stale`` to
    ``consent_sub``, the sub-parsers of ``photoguard consent``)."""

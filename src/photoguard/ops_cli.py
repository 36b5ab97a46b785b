"""Operational commands (watch, review, sweep, status, takedown, report, classlist)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the operational command groups to the main parser."""

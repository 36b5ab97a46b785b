"""The command line: a thin shell over the packages; ``photoguard.cli:main`` is the entry point."""

from photoguard.cli.app import main

__all__ = ["main"]

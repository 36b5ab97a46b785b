"""The command line: a thin shell over the packages, one module per noun; ``photoguard.cli:main``
is the entry point (see :mod:`photoguard.cli.app`)."""

from photoguard.cli.app import main

__all__ = ["main"]

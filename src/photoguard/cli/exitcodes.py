"""The exit codes of every ``photoguard`` command, in one place.

0 the command did what was asked; 1 it ran but something failed or is waiting (a photo held or
rejected, a service not running, a refused import); 2 the command line or its input was wrong
(usage, a missing list file, an invalid ``[dns]`` option); 3 ``photoguard.toml`` is missing or
invalid; 4 the database or the key file is missing, empty, damaged or was replaced (a hard stop:
restore it from the backup); 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_STATE = 4
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_CONFIG", "EXIT_FAIL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_STATE", "EXIT_USAGE"]

"""Run a Python snippet in a child process whose HOME is an empty folder, with onnxruntime's
telemetry switched on in its environment (photoguard must switch it off itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_in_empty_home(script: str, home: Path, timeout: float = 300) -> str:
    """Runs ``script`` with ``HOME=home`` (created empty) and ``ORT_DISABLE_TELEMETRY=0``; returns
    its stdout after asserting it exited 0 and left ``home`` empty (no ``~/.cache/Microsoft``)."""
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME",)},
        "HOME": str(home),
        "ORT_DISABLE_TELEMETRY": "0",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (home / ".cache" / "Microsoft").exists(), sorted(str(p) for p in home.rglob("*"))
    assert list(home.rglob("*")) == []
    return out.stdout

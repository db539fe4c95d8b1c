"""JSON report writer (schema ``loadgen.report/1``) and the atomic file write used by every output."""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any


def atomic_write_text(path: str, text: str, *, newline: str | None = None) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory plus rename; creates parent dirs.

    Readers never see a half-written file; the result gets the usual umask-derived permissions.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _clean(value: Any) -> Any:
    """Make ``value`` strict-JSON safe: NaN/inf become null, tuples/sets lists, keys strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_clean(v) for v in value), key=repr)
    return value


def dumps_report(report: dict) -> str:
    """Serialise the report as indented, strict JSON (unknown objects such as paths become strings)."""
    return json.dumps(_clean(report), indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"


def write_json(report: dict, path: str) -> None:
    """Atomically write ``report`` as JSON to ``path``, creating parent directories."""
    atomic_write_text(path, dumps_report(report))

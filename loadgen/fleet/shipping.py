"""Script shipping: the files a master sends with a test, and how a worker unpacks and later forgets them."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from loadgen.model.errors import UsageError

MAX_SCRIPT_BYTES = 20 * 1024 * 1024
SCRIPT_DIR_PREFIX = "loadgen-script-"


def script_files(path: str) -> tuple[str, dict[str, bytes]]:
    """The files to ship: the script file, every file of a directory (a package, or locustfiles), or those
    of each of several (``a.py,b.py``): the name then lists them the same way."""
    if "," in path:
        names: list[str] = []
        shipped: dict[str, bytes] = {}
        for part in (p.strip() for p in path.split(",") if p.strip()):
            name, part_files = script_files(part)
            if shipped.keys() & part_files.keys():
                raise UsageError(f"-f {path}: two scripts have the same file name; rename one or use a directory")
            names.append(name)
            shipped.update(part_files)
        return ",".join(names), shipped
    if os.path.isdir(path):
        root = os.path.abspath(path)
        base = os.path.basename(root.rstrip(os.sep))
        files: dict[str, bytes] = {}
        total = 0
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for name in names:
                if name.startswith(".") or name.endswith(".pyc"):
                    continue
                full = os.path.join(folder, name)
                rel = os.path.join(base, os.path.relpath(full, root))
                with open(full, "rb") as handle:
                    files[rel] = handle.read()
                total += len(files[rel])
                if total > MAX_SCRIPT_BYTES:
                    raise UsageError(f"script package {path!r} is over {MAX_SCRIPT_BYTES >> 20} MB: "
                                     "ship less, or give workers their own copy with -f")
        package = os.path.isfile(os.path.join(root, "__init__.py"))
        return (os.path.join(base, "__init__.py") if package else base), files
    with open(path, "rb") as handle:
        return os.path.basename(path), {os.path.basename(path): handle.read()}


def unpack_script(folder: str, files: dict[Any, Any], script_name: str) -> str:
    """Write shipped files under ``folder`` (never outside it); returns the script's path."""
    for rel, content in files.items():
        if not isinstance(rel, str) or not isinstance(content, bytes):
            raise UsageError("the master sent a malformed script file list")
        rel_path = os.path.normpath(rel)
        if rel_path.startswith("..") or os.path.isabs(rel_path):
            raise UsageError(f"the master sent a script file outside its folder: {rel!r}")
        path = os.path.join(folder, rel_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
    paths = []
    for part in script_name.split(","):
        name = os.path.normpath(part)
        if name.startswith("..") or os.path.isabs(name):
            raise UsageError(f"the master sent a script name outside its folder: {script_name!r}")
        paths.append(os.path.join(folder, name))
    return ",".join(paths)


def forget_script(folder: str) -> None:
    """Forget a shipped script: its folder, its sys.path entry and the modules imported from it (a worker
    that stays may get another version of the same files next time)."""
    prefix = os.path.realpath(folder) + os.sep
    sys.path[:] = [p for p in sys.path if not os.path.realpath(p).startswith(prefix)
                   and os.path.realpath(p) + os.sep != prefix]
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and os.path.realpath(path).startswith(prefix):
            del sys.modules[name]
    shutil.rmtree(folder, ignore_errors=True)


def sweep_stale_script_dirs() -> None:
    """Remove shipped-script folders left by worker processes that were killed (``loadgen-script-PID-*``
    whose PID no longer exists)."""
    folder = tempfile.gettempdir()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(SCRIPT_DIR_PREFIX):
            continue
        pid_text = name[len(SCRIPT_DIR_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
        except OSError:
            pass  # alive (perhaps another user's)

"""gevent patching, and what came too late for it. Imported first by the entry point: it imports nothing
that opens sockets, and gevent only inside ``patch()``."""

from __future__ import annotations

import sys

# client libraries that keep references to unpatched socket/ssl objects when imported before patching
CLIENT_LIBRARIES = ("ssl", "urllib3", "requests", "botocore", "boto3", "httpx", "httpcore", "aiohttp", "grpc",
                    "redis", "pymongo", "psycopg2", "pymysql", "pika", "kafka", "paramiko")

#: what was imported (or running) before gevent patched: set by ``patch()``, read by ``Environment.preflight``
EARLY_IMPORTS: list[str] = []
#: gevent's own warnings while patching (MonkeyPatchWarning), one line each
PATCH_WARNINGS: list[str] = []


def early_imports() -> list[str]:
    """Modules (and running threads) that patching comes too late for."""
    early = [name for name in CLIENT_LIBRARIES if name in sys.modules]
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        early.append(f"threading ({threading.active_count() - 1} threads already running)")
    return early


def patch() -> None:
    """Patch the standard library for gevent, recording what came too late."""
    import warnings

    early = early_imports()
    from gevent import monkey

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", monkey.MonkeyPatchWarning)
        monkey.patch_all()
    EARLY_IMPORTS[:] = early
    PATCH_WARNINGS[:] = [" ".join(str(w.message).split())[:300] for w in caught
                         if issubclass(w.category, monkey.MonkeyPatchWarning)]
    for w in caught:
        if not issubclass(w.category, monkey.MonkeyPatchWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)

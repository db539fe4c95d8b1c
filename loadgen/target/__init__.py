"""``loadgen target``: a small, fast HTTP(S) server for demos, examples, tests and benchmarks.

Endpoints: ``/``, ``/status/{code}``, ``/delay/{ms}``, ``/bytes/{n}``, ``/stall``, ``/echo``,
``/redirect/{n}``, ``/chunked/{n}``, ``/close``; admin: ``GET /__stats``, ``POST /__reset``.
Counters are per process: with ``processes > 1`` each process answers ``/__stats`` for itself.
"""

from loadgen.target.server import serve

__all__ = ["serve"]

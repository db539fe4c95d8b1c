"""``python -m loadgen.target``: start the target without the click CLI (used by the tests)."""

from __future__ import annotations

import argparse

from loadgen.target.server import serve


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadgen.target", description="loadgen's built-in HTTP(S) target")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed on stdout)")
    p.add_argument("--tls", action="store_true", help="HTTPS with a cached self-signed cert unless --certfile")
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.add_argument("--processes", type=int, default=1, help="pre-forked processes sharing the port")
    p.add_argument("--access-log", help="append one line per request to this file")
    a = p.parse_args(argv)
    serve(a.host, a.port, tls=a.tls, certfile=a.certfile, keyfile=a.keyfile, processes=a.processes,
          access_log=a.access_log)


if __name__ == "__main__":
    main()

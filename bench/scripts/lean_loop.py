"""The ceiling: N gevent greenlets, each on its own keep-alive socket, send a pre-encoded ``GET /`` and read the
response framed by Content-Length. No HTTP library, no statistics beyond one counter per second.

    python bench/scripts/lean_loop.py --url http://127.0.0.1:8080/ --users 50 --duration 20 --json out.json

HTTPS uses a gevent ``SSLContext`` without verification. Bounded by ``--duration`` and ``--max-requests``.
Loopback only.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
from gevent import socket, ssl  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--max-requests", type=int, default=50_000_000)
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args(argv)

    parts = urlsplit(args.url)
    host = parts.hostname or "127.0.0.1"
    if not host.startswith("127."):
        parser.error("loopback targets only (127.0.0.x)")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: lean\r\n\r\n").encode()
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    per_second: list[int] = [0] * (int(args.duration) + 2)
    state = {"requests": 0, "errors": 0}
    start = time.monotonic()
    stop = start + args.duration

    def user() -> None:
        try:
            sock = socket.create_connection((host, port))
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)
        except OSError:
            state["errors"] += 1
            return
        buf = b""
        try:
            while state["requests"] < args.max_requests:
                now = time.monotonic()
                if now >= stop:
                    break
                sock.sendall(request)
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end >= 0:
                        break
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed by peer")
                    buf += chunk
                head, rest = buf[:end], buf[end + 4:]
                i = head.find(b"Content-Length: ")
                length = int(head[i + 16:head.find(b"\r\n", i)]) if i >= 0 else 0
                while len(rest) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed by peer")
                    rest += chunk
                buf = rest[length:]
                state["requests"] += 1
                per_second[min(int(time.monotonic() - start), len(per_second) - 1)] += 1
        except OSError:
            state["errors"] += 1
        finally:
            sock.close()

    greenlets = [gevent.spawn(user) for _ in range(args.users)]
    gevent.joinall(greenlets, timeout=args.duration + 10)
    gevent.killall(greenlets, timeout=2)
    elapsed = time.monotonic() - start
    seconds = per_second[: int(args.duration)]
    steady = seconds[2:-1] if len(seconds) >= 5 else []
    result = {
        "tool": "lean", "url": args.url, "users": args.users, "duration_s": round(elapsed, 3),
        "requests": state["requests"], "errors": state["errors"],
        "rps": round(state["requests"] / elapsed, 1) if elapsed else 0.0,
        "steady_rps": round(sum(steady) / len(steady), 1) if steady else None,
        "per_second": seconds,
    }
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(result, f)
    print(json.dumps({k: v for k, v in result.items() if k != "per_second"}))
    return 0 if state["requests"] and not state["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())

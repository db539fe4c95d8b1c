"""Micro-benchmark: N greenlets in a tight loop on loadgen's HttpSession; prints JSON req/s.

    python bench/client_loop.py --nginx --scheme http  --users 50 --duration 10 --cpu 0
    python bench/client_loop.py --url http://127.0.0.1:18080/ --users 50 --duration 10

`--nginx` writes an nginx config to a temp dir (ports 18080/18443 by default, 100-byte body, self-signed
cert), starts it pinned to CPU 1 and stops it at the end. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gevent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen.client import COUNTERS, ClientFactory, ClientSettings  # noqa: E402

NGINX_CONF = """worker_processes 1;
daemon on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 20000;
events {{ worker_connections 19000; use epoll; multi_accept on; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 1000000000; keepalive_timeout 300s; server_tokens off; default_type text/plain;
  server {{ listen 127.0.0.1:{http_port} backlog=16384; location / {{ return 200 "{body}\\n"; }} }}
  server {{
    listen 127.0.0.1:{https_port} ssl backlog=16384;
    ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem; ssl_session_cache shared:SSL:10m;
    location / {{ return 200 "{body}\\n"; }}
  }}
}}
"""


class BenchRecorder:
    """Stand-in for the stats recorder: per-(method, name) count, failures and a log bucket."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], list[int]] = {}
        self.buckets = [0] * 64

    def record(self, method: str, name: str, latency_us: int, nbytes: int, error: str | None = None,
               queued_us: int = 0, ttfb_us: int = -1, body_us: int = 0,
               setup: tuple[int, int, int] | None = None) -> None:
        e = self.entries.get((method, name))
        if e is None:
            e = self.entries[(method, name)] = [0, 0, 0]
        e[0] += 1
        e[2] += nbytes
        if error is not None:
            e[1] += 1
        self.buckets[(latency_us + queued_us).bit_length()] += 1


def make_recorder(kind: str) -> object:
    if kind == "real":
        from loadgen.stats.recorder import Recorder  # type: ignore[import-not-found]

        return Recorder()
    return BenchRecorder()


def start_nginx(tmp: Path, cpu: str, http_port: int, https_port: int) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # as the anchors
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(d=tmp, body="x" * 99, http_port=http_port, https_port=https_port))
    cmd = ["nginx", "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    subprocess.run(cmd, check=True)
    for _ in range(50):
        if (tmp / "nginx.pid").exists():
            return
        time.sleep(0.05)


def stop_nginx(tmp: Path) -> None:
    pidfile = tmp / "nginx.pid"
    if pidfile.exists():
        os.kill(int(pidfile.read_text()), signal.SIGQUIT)
        time.sleep(0.3)


def run(url: str, users: int, duration: float, keep_alive: bool, recorder_kind: str, path: str,
        timeouts: bool = True) -> dict:
    recorder = make_recorder(recorder_kind)
    settings = ClientSettings(insecure=True) if timeouts else ClientSettings(
        insecure=True, connect_timeout=None, read_timeout=None)
    factory = ClientFactory(settings, recorder)
    COUNTERS.reset()
    count = [0]

    def user() -> None:
        s = factory.session(url, keep_alive=keep_alive)
        get = s.get
        n = 0
        stop = time.perf_counter() + duration
        while time.perf_counter() < stop and n < 100_000_000:
            get(path)
            n += 1
        count[0] += n
        s.close()

    # warm-up: open the connections, fill caches
    warm = factory.session(url)
    warm.get(path)
    warm.close()
    COUNTERS.reset()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    gevent.joinall([gevent.spawn(user) for _ in range(users)], timeout=duration + 30)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    factory.close_all()
    snap = COUNTERS.snapshot()
    failures = sum(e[1] for e in recorder.entries.values()) if isinstance(recorder, BenchRecorder) else None
    return {
        "url": url, "users": users, "duration": round(elapsed, 3), "keep_alive": keep_alive,
        "requests": count[0], "rps": round(count[0] / elapsed), "cpu_pct": round(100 * cpu / elapsed),
        "rps_per_core": round(count[0] / cpu) if cpu else None,
        "failures": failures, "opened": snap["opened"], "tls_full": snap["tls_full"],
        "tls_resumed": snap["tls_resumed"], "bytes_received": snap["bytes_received"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="target base URL (default: the --nginx one)")
    ap.add_argument("--scheme", choices=("http", "https"), default="http")
    ap.add_argument("--path", default="/")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-keep-alive", action="store_true")
    ap.add_argument("--no-timeouts", action="store_true", help="connect/read timeouts off (to measure their cost)")
    ap.add_argument("--recorder", choices=("bench", "real"), default="bench")
    ap.add_argument("--nginx", action="store_true", help="start a private nginx on 18080/18443")
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument("--nginx-cpu", default="1")
    ap.add_argument("--http-port", type=int, default=18080)
    ap.add_argument("--https-port", type=int, default=18443)
    args = ap.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    url = args.url or (f"{args.scheme}://127.0.0.1:{args.http_port if args.scheme == 'http' else args.https_port}")
    if not url.startswith(("http://127.", "https://127.", "http://localhost", "https://localhost")):
        sys.exit("loopback targets only")
    tmp = Path(tempfile.mkdtemp(prefix="loadgen-bench-")) if args.nginx else None
    try:
        if tmp is not None:
            start_nginx(tmp, args.nginx_cpu, args.http_port, args.https_port)
        results = [run(url, args.users, args.duration, not args.no_keep_alive, args.recorder, args.path,
                       not args.no_timeouts)
                   for _ in range(max(1, min(args.runs, 20)))]
    finally:
        if tmp is not None:
            stop_nginx(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
    rps = sorted(r["rps"] for r in results)
    per_core = sorted(r["rps_per_core"] or 0 for r in results)
    out = {"median_rps": rps[len(rps) // 2] if rps else math.nan,
           "median_rps_per_core": per_core[len(per_core) // 2] if per_core else math.nan, "runs": results}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

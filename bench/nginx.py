"""The benchmark's target: nginx with one worker, a 100-byte ``200`` over HTTP and HTTPS, on loopback.

    with Nginx(address="127.0.0.1") as server:
        print(server.http_url, server.https_url)

The config and a self-signed RSA-2048 certificate go to a temporary directory. nginx runs with
``daemon off`` as our child, pinned to one CPU with ``taskset`` when it exists (CPU 1 by default, the
generator gets CPU 0), and is stopped on exit. ``access_log=True`` logs ``$msec`` per request (for the
accuracy test only: logging costs nginx CPU).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BODY = "x" * 99 + "\n"  # 100 bytes
MAX_CONNECTIONS = 19500  # one worker; the fd hard limit on the bench machine is 20000

CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections {conns}; use epoll; multi_accept on; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format bench '$msec $status';
    {access_log}
    default_type text/plain;
    server_tokens off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 10m;
    server {{
        listen {addr}:{http_port} backlog=16384;
        location / {{ return 200 "{body}"; }}
    }}
    server {{
        listen {addr}:{https_port} ssl backlog=16384;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        location / {{ return 200 "{body}"; }}
    }}
{status}}}
"""

# ``status=True``: nginx's own request counter (stub_status) on a third loopback port, read by
# ``Nginx.requests_served()`` to count a generator's requests at the target.
STATUS_SERVER = """\
    server {{
        listen {addr}:{status_port};
        access_log off;
        location = /nginx_status {{ stub_status; }}
    }}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def pinned(cpu: str | None, cmd: list[str]) -> list[str]:
    """``cmd`` prefixed with ``taskset -c CPU`` when taskset exists, there is more than one CPU and cpu is set."""
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return cmd
    return ["taskset", "-c", cpu, *cmd]


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def wait_accepting(address: str, port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}")
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx does not accept on {address}:{port} after {timeout}s")


def make_cert(directory: Path, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """Self-signed RSA-2048 certificate for ``address``: ``openssl req`` if present, else ``cryptography``."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if shutil.which("openssl"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "30", "-subj", f"/CN={address}",
                        "-addext", f"subjectAltName=IP:{address}"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return cert, key
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    pkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pkey.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                                  critical=False)
                   .sign(pkey, hashes.SHA256()))
    key.write_bytes(pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


class Nginx:
    """One nginx master + one worker on ``address`` (127.0.0.x only)."""

    def __init__(self, address: str = "127.0.0.1", cpu: str | None = "1", access_log: bool = False,
                 status: bool = False) -> None:
        if not address.startswith("127."):
            raise ValueError("the bench only loads loopback addresses")
        self.address, self.cpu, self.access_log, self.status = address, cpu, access_log, status
        self.proc: subprocess.Popen | None = None
        self.dir: Path | None = None
        self.http_port = self.https_port = self.status_port = 0

    @property
    def http_url(self) -> str:
        return f"http://{self.address}:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://{self.address}:{self.https_port}"

    @property
    def log_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "access.log"

    def start(self) -> Nginx:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
        self.dir = Path(tempfile.mkdtemp(prefix="loadgen-bench-nginx-"))
        make_cert(self.dir, self.address)
        self.http_port, self.https_port = free_port(self.address), free_port(self.address)
        self.status_port = free_port(self.address) if self.status else 0
        user = ""
        if os.geteuid() == 0:  # the worker would run as nobody and could not write under our temp dir
            import grp
            import pwd

            user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = hard if hard != resource.RLIM_INFINITY else 65536
        log = f"access_log {self.dir}/access.log bench;" if self.access_log else "access_log off;"
        status = STATUS_SERVER.format(addr=self.address, status_port=self.status_port) if self.status else ""
        conf = self.dir / "nginx.conf"
        conf.write_text(CONF.format(user=user, d=self.dir, nofile=nofile, conns=min(MAX_CONNECTIONS, nofile - 200),
                                    access_log=log, addr=self.address, http_port=self.http_port,
                                    https_port=self.https_port, body=BODY.replace("\n", "\\n"), status=status))
        self.proc = subprocess.Popen(pinned(self.cpu, [binary, "-p", str(self.dir), "-c", str(conf),
                                                       "-e", str(self.dir / "error.log")]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_raise_nofile)
        try:
            for port in (self.http_port, self.https_port, self.status_port):
                if port:
                    wait_accepting(self.address, port, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def requests_served(self) -> int:
        """nginx's total request count (stub_status ``requests``; this status request included). ``status=True``."""
        if not self.status_port:
            raise RuntimeError("Nginx(status=True) is needed for requests_served()")
        with socket.create_connection((self.address, self.status_port), timeout=2) as s:
            s.sendall(b"GET /nginx_status HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        # "Active connections: 51 \nserver accepts handled requests\n 51 51 123456 \nReading: ..."
        body = data.split(b"\r\n\r\n", 1)[1].decode()
        return int(body.splitlines()[2].split()[2])

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True,
                                 text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [int(p) for p in out.split()]

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker(s) so far."""
        return sum(proc_cpu_seconds(pid) for pid in self.worker_pids())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master exits
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RequestSampler:
    """Counts one generator's requests at the target: ``Nginx.requests_served()`` every ``interval`` s (call
    ``tick()`` often), minus the status requests themselves, as ``(time.time(), requests since the first sample)``.
    """

    def __init__(self, server: Nginx, interval: float = 0.25) -> None:
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, int]] = []
        self._polls = 0
        self._base = 0
        self._next = 0.0

    def sample(self) -> None:
        raw = self.server.requests_served()
        self._polls += 1  # every status request counts itself
        now = time.time()
        if not self.samples:
            self._base = raw - self._polls
        self.samples.append((now, raw - self._polls - self._base))
        self._next = now + self.interval

    def tick(self) -> None:
        if time.time() >= self._next:
            self.sample()

    def rates(self, t0: float, seconds: float, skip_first: float = 2.0, skip_last: float = 1.0) -> dict:
        """Requests seen, the load's start (s after ``t0``: the midpoint of the samples around the counter's first
        move), the steady rate over ``[start + skip_first, start + seconds - skip_last]`` (between the samples
        just inside that window) and per-second counts from the start (interpolated)."""
        s = self.samples
        out: dict = {"target_requests": s[-1][1] if s else 0, "load_start_s": None, "target_steady_rps": None,
                     "target_per_second": []}
        moving = next((i for i in range(1, len(s)) if s[i][1] > 0), None)
        if moving is None:
            return out
        start = (s[moving - 1][0] + s[moving][0]) / 2
        out["load_start_s"] = round(start - t0, 3)
        a, b = start + skip_first, start + seconds - skip_last
        inside = [x for x in s if a <= x[0] <= b]
        if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
            out["target_steady_rps"] = round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 1)

        def at(t: float) -> float:
            for (ta, na), (tb, nb) in zip(s, s[1:]):
                if ta <= t <= tb:
                    return na + (nb - na) * ((t - ta) / (tb - ta) if tb > ta else 1.0)
            return float(s[-1][1])

        whole = int(s[-1][0] - start)
        out["target_per_second"] = [round(at(start + k + 1) - at(start + k)) for k in range(whole)]
        return out


def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process from /proc (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


if __name__ == "__main__":
    with Nginx() as server:
        print(server.http_url, server.https_url, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass

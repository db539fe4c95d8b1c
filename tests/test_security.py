"""A fleet nobody uninvited can join, and no worker runs a script from a master it does not trust: real
masters and workers (processes), real CURVE, keys made by ``loadgen keys``, truth at the target.

Each script that a process imports leaves a mark ``TAG-PID`` (at import, before any user runs), so a test
knows exactly which processes got which master's script."""

from __future__ import annotations

import os
import re
import socket
import stat
import time
from pathlib import Path

import psutil
import pytest
import zmq
from fleet import SCRIPT, Fleet, free_port, kill_pid, wait_until
from servers import target_stats

from loadgen.fleet.keyring import worker_keys
from loadgen.fleet.protocol import PROTOCOL_VERSION, Heartbeat, Hello, Reject, Stats, decode, encode
from loadgen.fleet.security import fingerprint, id_suffix, load_public
from loadgen.stats.endpoint import Entry
from loadgen.stats.recorder import StatsDelta
from loadgen.stats.wire import encode_delta

pytestmark = pytest.mark.timeout(120)
MB = 1024 * 1024


@pytest.fixture
def url(fresh_target: str) -> str:
    return fresh_target


@pytest.fixture
def marks(fleet: Fleet, tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    fleet.env["LOADGEN_TEST_MARKS"] = str(folder)
    return folder


def marked_script(directory: Path, tag: str) -> Path:
    path = directory / f"{tag}.py"
    path.write_text(f"import os, pathlib\npathlib.Path(os.environ['LOADGEN_TEST_MARKS'], '{tag}-' + str(os.getpid()))"
                    f".touch()\n" + SCRIPT.format(wait=0.05))
    return path


def marked(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def keys(fleet: Fleet, directory: Path, *args: str) -> Path:
    assert fleet.start(f"keys-{directory.name}", "keys", str(directory), *args).wait(20) == 0
    return directory


def served(url: str) -> int:
    return target_stats(url)["requests"]


def assert_exact(report: dict, url: str) -> None:
    assert report["totals"]["requests"] == served(url) > 0
    assert sum(row["requests"] for row in report["workers"]) == report["totals"]["requests"]


def offer(sock: zmq.Socket, frame: bytes, within: float = 5.0) -> None:
    """Queue ``frame`` if the socket takes it within ``within`` s: a DEALER whose handshake is refused may
    never have a pipe to queue it on (which is the point), and a blocking send would wait for ever."""
    deadline = time.monotonic() + within
    while True:
        try:
            sock.send(frame, flags=zmq.NOBLOCK, copy=False)
            return
        except zmq.Again:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


# ---- loadgen keys -------------------------------------------------------------------------------------------
def test_loadgen_keys_makes_a_fleet_in_one_command(fleet: Fleet, tmp_path: Path) -> None:
    made = fleet.start("keys", "keys", str(tmp_path / "fleet"), "--workers", "2")
    assert made.wait(20) == 0
    root = tmp_path / "fleet"
    master_public = load_public(str(root / "master" / "master.key"))
    assert fingerprint(master_public) in made.stdout()
    for part in ("worker-1", "worker-2"):
        assert (root / part / "master.key").read_bytes() == (root / "master" / "master.key").read_bytes()
        assert (root / "master" / "allowed" / f"{part}.key").read_bytes() == (root / part / f"{part}.key").read_bytes()
        assert not (root / part / "master.key_secret").exists()  # a worker machine never holds the master's secret
        assert stat.S_IMODE((root / part / f"{part}.key_secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "master" / "master.key_secret").stat().st_mode) == 0o600
    assert all(stat.S_IMODE(d.stat().st_mode) == 0o700 for d in (root, root / "master", root / "worker-1"))
    assert worker_keys(str(root / "worker-2")).server_public == master_public
    again = fleet.start("keys-again", "keys", str(root))
    assert again.wait(20) == 2
    assert again.stderr().count("\n") == 1 and "--force" in again.stderr()


def test_without_keys_or_an_explicit_opt_out_a_worker_does_not_start(fleet: Fleet, tmp_path: Path) -> None:
    fleet.env["LOADGEN_KEYS"] = str(tmp_path / "nowhere")
    worker = fleet.worker(free_port())
    assert worker.wait(20) == 2
    err = worker.stderr()
    assert err.count("\n") == 1 and "no worker keys in" in err and "--insecure-no-auth" in err
    clash = fleet.worker(free_port(), "--insecure-no-auth", "--curve-master-key", "x.key")
    assert clash.wait(20) == 2 and "--insecure-no-auth turns CURVE off" in clash.stderr()


# ---- who may join, whom a worker trusts ----------------------------------------------------------------------
def test_only_the_fleets_workers_join_and_only_its_master_is_trusted(fleet: Fleet, url: str, marks: Path,
                                                                    tmp_path: Path) -> None:
    ours, theirs = keys(fleet, tmp_path / "ours"), keys(fleet, tmp_path / "theirs")
    port = free_port()
    master = fleet.master(marked_script(tmp_path, "real"), url, "-u", "2", "-r", "100", "-t", "4s",
                          "--keys", str(ours / "master"), port=port)
    # a worker that knows our master's public key (public, after all) but holds a key of another fleet: the
    # master refuses its key before it can send a frame
    stranger = fleet.worker(port, "--curve-secret-key", str(theirs / "worker" / "worker.key_secret"),
                            "--curve-master-key", str(ours / "worker" / "master.key"))
    assert stranger.wait(20) == 2
    stranger_key = fingerprint(load_public(str(theirs / "worker" / "worker.key")))
    assert f"the master refused this worker's key {stranger_key}" in stranger.stderr()
    # our worker key, but trusting the other fleet's master: it refuses this master
    misled = fleet.worker(port, "--curve-secret-key", str(ours / "worker" / "worker.key_secret"),
                          "--curve-master-key", str(theirs / "worker" / "master.key"))
    assert misled.wait(20) == 2
    theirs_master = fingerprint(load_public(str(theirs / "master" / "master.key")))
    assert f"does not hold the key this worker trusts ({theirs_master})" in misled.stderr()
    # a worker of the other fleet altogether: it does not trust this master
    other = fleet.worker(port, "--keys", str(theirs / "worker"))
    assert other.wait(20) == 2 and f"({theirs_master})" in other.stderr()
    good = fleet.worker(port, "--keys", str(ours / "worker"))
    assert master.wait(40) == 0, master.stderr()
    assert good.wait(15) == 0
    assert f"with CURVE key {stranger_key}" in master.stderr()
    report = fleet.report()
    assert_exact(report, url)
    suffix = id_suffix(load_public(str(ours / "worker" / "worker.key")))
    assert len(report["workers"]) == 1 and report["workers"][0]["id"].endswith("-" + suffix)
    assert any(w["kind"] == "security" and "refused" in w["message"] for w in report["warnings"])
    # neither outsider ever got the script: only the master and the fleet's worker imported it
    assert marked(marks) == {f"real-{master.pid}", f"real-{good.pid}"}


def test_a_rogue_master_on_the_address_of_a_killed_one_gets_no_worker(fleet: Fleet, url: str, marks: Path,
                                                                      tmp_path: Path) -> None:
    ours, rogue_keys = keys(fleet, tmp_path / "ours"), keys(fleet, tmp_path / "rogue")
    port = free_port()
    real = marked_script(tmp_path, "real")
    master = fleet.master(real, url, "-u", "2", "-r", "100", "-t", "60s", "--keys", str(ours / "master"),
                          port=port, expect=2)
    staying = fleet.worker(port, "--keys", str(ours / "worker"), "--stay")
    leaving = fleet.worker(port, "--keys", str(ours / "worker"), "--give-up-after", "6s")
    master.wait_for("2/2 workers connected", 20)
    wait_until(lambda: served(url) > 20, 15, what="load")
    kill_pid(master.pid)  # kill -9: the address is free for whoever takes it
    rogue = fleet.start("rogue", "master", "-f", str(marked_script(tmp_path, "rogue")), "-H", url, "--bind",
                        f"127.0.0.1:{port}", "--expect-workers", "1", "--expect-workers-timeout", "12", "-t", "2s",
                        "--keys", str(rogue_keys / "master"), "-q")
    assert rogue.wait(40) == 2, rogue.stderr()
    assert "only 0 of 1 workers connected" in rogue.stderr()
    # the worker without --stay gave up on its master within its bound, with one clear line
    assert leaving.wait(20) == 5
    assert "no master has answered" in leaving.stderr()
    assert "does not hold the key this worker trusts" in staying.stderr()
    assert staying.poll() is None
    assert not {m for m in marked(marks) if m.startswith("rogue-")} - {f"rogue-{rogue.pid}"}
    # its own master back on the address: the staying worker rejoins it, and only it
    again = fleet.master(real, url, "-u", "2", "-r", "100", "-t", "3s", "--keys", str(ours / "master"), port=port,
                         json_name="again.json")
    assert again.wait(40) == 0, again.stderr()
    assert fleet.report("again.json")["totals"]["requests"] > 0
    staying.signal(15)
    assert staying.wait(15) == 0


def test_an_authenticated_peer_cannot_speak_under_another_workers_id(fleet: Fleet, url: str, zctx: zmq.Context,
                                                                    marks: Path, tmp_path: Path) -> None:
    root = keys(fleet, tmp_path / "fleet", "--workers", "2")
    port = free_port()
    master = fleet.master(marked_script(tmp_path, "real"), url, "-u", "2", "-r", "100", "-t", "5s",
                          "--keys", str(root / "master"), port=port)
    real = fleet.worker(port, "--keys", str(root / "worker-1"))
    victim = master.wait_for(r"worker (\S+) joined", 20).group(1)
    wait_until(lambda: served(url) > 10, 15, what="load")
    impostor_keys = worker_keys(str(root / "worker-2"))  # a member of the fleet, with a key of its own
    impostor = zctx.socket(zmq.DEALER)
    impostor_keys.apply_client(impostor)
    impostor.setsockopt(zmq.IDENTITY, victim.encode())
    impostor.setsockopt(zmq.LINGER, 0)
    impostor.connect(f"tcp://127.0.0.1:{port}")
    impostor.send(encode(Hello(version=PROTOCOL_VERSION, worker_id=victim, host="x")))
    impostor.send(encode(Heartbeat(state="running", users=999, seq=1)))
    test_id = "unknown"
    if impostor.poll(2000):  # an answer would tell it the test's id; the master must never answer it
        test_id = getattr(decode(impostor.recv()), "test_id", "") or test_id
    invented = StatsDelta()
    invented.entries[("GET", "/")] = entry = Entry("GET", "/")
    entry.requests = 1_000_000
    impostor.send(encode(Stats(test_id=test_id, run="r9", seq=1, last=1, delta=encode_delta(invented.seal()))))
    master.wait_for(rf"dropped frames under worker id {re.escape(victim)}", 15)
    assert test_id == "unknown"  # nothing it sent was read, so nothing was answered
    impostor.close(0)
    # the victim's own key (workers sharing a key): vouched for, but its id is the victim's, held by the victim's
    # connection (whose route carries a secret nobody else knows): refused
    twin = zctx.socket(zmq.DEALER)
    worker_keys(str(root / "worker-1")).apply_client(twin)
    twin.setsockopt(zmq.IDENTITY, victim.encode())
    twin.setsockopt(zmq.LINGER, 0)
    twin.connect(f"tcp://127.0.0.1:{port}")
    twin.send(encode(Hello(version=PROTOCOL_VERSION, worker_id=victim, host="x")))
    assert twin.poll(10_000)
    refusal = decode(twin.recv())
    assert isinstance(refusal, Reject) and f"worker id {victim} is taken" in refusal.reason
    twin.close(0)
    assert master.wait(40) == 0, master.stderr()
    assert real.wait(15) == 0
    report = fleet.report()
    assert_exact(report, url)  # the victim's row and the totals are what the target served
    assert [row["id"] for row in report["workers"]] == [victim]
    assert report["workers"][0]["users"] <= 2
    assert any(w["kind"] == "security" and "under another worker's id" in w["message"] for w in report["warnings"])


def test_a_64_mb_frame_from_an_unauthenticated_peer_costs_the_master_no_memory(fleet: Fleet, zctx: zmq.Context,
                                                                              tmp_path: Path) -> None:
    root = keys(fleet, tmp_path / "fleet")
    port = free_port()
    script = tmp_path / "idle.py"
    script.write_text(SCRIPT.format(wait=1))
    master = fleet.master(script, "http://127.0.0.1:9", "-u", "1", "-t", "1s", "--expect-workers-timeout", "20",
                          "--keys", str(root / "master"), port=port)
    master.wait_for("0/1 workers connected", 20)
    process = psutil.Process(master.pid)
    time.sleep(1.0)
    before = process.memory_info().rss
    blob = os.urandom(64 * MB)
    stranger = zctx.socket(zmq.DEALER)  # CURVE with a key the master does not allow
    public, secret = zmq.curve_keypair()
    stranger.curve_publickey, stranger.curve_secretkey = public, secret
    stranger.curve_serverkey = load_public(str(root / "master" / "master.key"))
    plain = zctx.socket(zmq.DEALER)  # no CURVE at all
    for sock in (stranger, plain):
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://127.0.0.1:{port}")
        offer(sock, blob)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:  # not even ZeroMQ
        try:
            raw.sendall(blob)
        except OSError:
            pass  # the master hung up: good
    time.sleep(3.0)
    grown = process.memory_info().rss - before
    assert grown < 8 * MB, f"the master's RSS grew by {grown / MB:.1f} MB"
    assert master.poll() is None
    assert master.wait(40) == 2  # no worker joined; the strangers never counted as one
    assert "only 0 of 1 workers connected" in master.stderr() and "Traceback" not in master.stderr()

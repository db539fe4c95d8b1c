"""``loadgen worker``: one DEALER peer of the master; runs the users the master asks for."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
import uuid

import gevent
from gevent.event import Event

from loadgen import __version__
from loadgen.engine.loop_guard import install_signals
from loadgen.fleet.assignment import Assignment
from loadgen.fleet.dealer import Dealer
from loadgen.fleet.handshakes import watch_handshakes
from loadgen.fleet.lease import Lease, MasterClock
from loadgen.fleet.link import parse_master_address, routing_id
from loadgen.fleet.local_test import LocalPreparation, LocalTest
from loadgen.fleet.patience import Patience
from loadgen.fleet.preparation import Preparation
from loadgen.fleet.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Custom,
    FrameError,
    Heartbeat,
    Hello,
    MasterHeartbeat,
    Message,
    Quit,
    Rate,
    Reject,
    Start,
    Started,
    Stop,
    Target,
    VersionMismatch,
    Warning_,
    Welcome,
    decode,
    decode_map,
)
from loadgen.fleet.security import CurveKeys, peer_id
from loadgen.fleet.session_state import SessionState
from loadgen.fleet.shipping import sweep_stale_script_dirs
from loadgen.model.addresses import HostPort
from loadgen.model.errors import EXIT_NO_MASTER, CommandError

log = logging.getLogger("loadgen.fleet.worker")
FINAL_DELIVERY = 5.0  # seconds a finishing worker resends its last delta until the master acknowledges it


class Worker:
    """Connects to a master, runs the tests it is given, streams deltas every second. Users run only under
    a lease the master renews by answering heartbeats (``fleet.lease``): when answers stop, users stop before
    the master can hand them to anyone else. Silent for ``master_timeout``: reconnect, keeping the test and
    unacknowledged deltas for the same master (a new master id gets a fresh introduction). ``stay``: after a
    test ends cleanly, wait for the next instead of exiting."""

    def __init__(self, master: str, script_path: str | None = None, heartbeat_interval: float = 1.0,
                 master_timeout: float = 10.0, stay: bool = False, keys: CurveKeys | None = None,
                 worker_id: str | None = None, processes: int = 1,
                 endpoint: str | None = None, preparation: LocalPreparation | None = None,
                 give_up_after: float = 0.0) -> None:
        if endpoint is None:
            host, port = parse_master_address(master)
            endpoint = HostPort(host, port).zmq_connect()
        self.endpoint = endpoint  # a machine's processes connect to its hub instead (``fleet.hub``)
        self.script_path = script_path
        self.heartbeat_interval = heartbeat_interval
        self.master_timeout = master_timeout
        self.stay = stay
        self.processes = processes  # the processes this peer speaks for (a machine: its children)
        self.keys = keys
        self.worker_id = worker_id or peer_id(f"{socket.gethostname()}-{os.getpid()}", keys)
        self.patience = Patience(give_up_after, stay)
        self.link = Dealer(self.endpoint, routing_id(self.worker_id), keys)
        self.welcomed = False
        self.ever_welcomed = False
        self.master_id = ""
        self.session = uuid.uuid4().hex[:12]
        self.last_master = time.monotonic()
        self.assignment: Assignment | None = None
        self.lease = Lease()
        self.clock = MasterClock()
        self.test_id = ""
        self._state = SessionState.IDLE
        self.preparation: LocalPreparation = preparation or Preparation(script_path, self.worker_id)
        self._done = Event()
        self.exit_code = 0
        self._greenlets: list[gevent.Greenlet] = []
        self._reconnected = False
        self._signals = 0

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def env(self) -> LocalTest | None:
        return self.assignment.env if self.assignment is not None else None

    def _move(self, state: SessionState) -> None:
        """The one place this worker's test session changes state."""
        self._state = state

    # ---- transport ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        self.link.connect()

    def send(self, message: Message) -> bool:
        """Queue a frame for the master; False when it could not be (no connection)."""
        return self.link.send(message)

    # ---- main loop ---------------------------------------------------------------------------------------
    def run(self) -> int:
        sweep_stale_script_dirs()
        self._connect()
        trust = f", trusting master key {self.keys.master_fingerprint}" if self.keys is not None else ""
        print(f"loadgen worker {self.worker_id} connecting to {self.endpoint}{trust}", file=sys.stderr, flush=True)
        self._greenlets = [gevent.spawn(self._receive_loop), gevent.spawn(self._heartbeat_loop)]
        if self.keys is not None:
            self._greenlets.append(gevent.spawn(watch_handshakes, lambda: self.link.monitor,
                                                lambda: not self._done.is_set(), lambda: self.ever_welcomed,
                                                self._refused, self.endpoint, self.keys.fingerprint,
                                                self.keys.master_fingerprint))
        install_signals(self._on_signal)  # counted off the loop too: a second one ends a blocked worker
        try:
            self._done.wait()
        finally:
            self._shutdown()
        return self.exit_code

    def request_quit(self, code: int = 0) -> None:
        self.exit_code = code
        self._done.set()

    def _on_signal(self, signum: int) -> None:
        """First signal: stop users (honouring the stop timeout), flush, say bye, exit. Second: exit now."""
        self._signals += 1
        if self._signals > 1:
            self.request_quit(130)
            return
        print(f"loadgen worker {self.worker_id}: {signal.Signals(signum).name}: stopping users, flushing",
              file=sys.stderr, flush=True)
        gevent.spawn(self._leave, None)

    def _leave(self, timeout: float | None) -> None:
        env = self.env
        if env is not None:
            self._end_test(timeout=env.options.stop_timeout if timeout is None else timeout, send_final=True)
        self.send(Bye(reason="worker exiting"))
        gevent.sleep(0.2)
        self.request_quit(self.exit_code)

    def _hello(self) -> Hello:
        return Hello(version=PROTOCOL_VERSION, worker_id=self.worker_id, host=socket.gethostname(),
                     pid=os.getpid(), processes=self.processes, has_script=self.script_path is not None,
                     loadgen_version=__version__,
                     session=self.session, test_id=self.test_id if self.assignment is not None else "")

    def _heartbeat_loop(self) -> None:
        while not self._done.is_set():
            if not self.welcomed:
                self.send(self._hello())
            else:
                self.beat()
            interval = self.heartbeat_interval
            if self.assignment is not None:
                interval = min(interval, self.lease.duration / 2)  # at least two renewals per lease
            gevent.sleep(interval)

    def beat(self) -> None:
        """A heartbeat: its answer renews the lease."""
        work = self.assignment
        env = work.env if work is not None else None
        users = env.runner.user_count if env is not None else 0
        cpu = env.monitor.cpu_percent if env is not None else 0.0
        rss = env.monitor.rss_mb if env is not None else 0.0
        state = SessionState.FENCED if work is not None and work.fenced and self._state == SessionState.RUNNING \
            else self._state
        now = time.monotonic()
        self.send(Heartbeat(state=state.label, users=users, cpu_percent=cpu, rss_mb=rss,
                            test_id=self.test_id if work is not None else "", seq=self.lease.beat(now), sent=now,
                            applied=work.applied if work is not None else 0))

    def _check_master(self) -> None:
        if not self._done.is_set() and self.patience.over(self.worker_id, self.endpoint):
            self.request_quit(EXIT_NO_MASTER)
            return
        if self.welcomed and time.monotonic() - self.last_master > self.master_timeout:
            held = " (its test is kept, users stay stopped)" if self.assignment is not None else ""
            print(f"loadgen worker {self.worker_id}: no word from the master for {self.master_timeout:g} s; "
                  f"reconnecting{held}", file=sys.stderr, flush=True)
            self.welcomed = False
            self._connect()
            self._reconnected = True
            self.send(self._hello())
            self.last_master = time.monotonic()

    def _forget_master(self, reconnect: bool) -> None:
        """Another master answers, or ours exited: drop the test (its numbers belong to a master that is gone)
        and introduce ourselves again."""
        self.welcomed = False
        self.master_id = ""
        self._drop_test()
        if reconnect:
            self._connect()
            self.send(self._hello())
        self.last_master = time.monotonic()  # else the heartbeat loop introduces us within a beat

    def _receive_loop(self) -> None:
        while not self._done.is_set():
            self._check_master()
            frame = self.link.receive(200)
            if frame is None:
                continue
            try:
                message = decode(frame)
            except VersionMismatch as exc:
                self._refused(f"the master speaks protocol version {exc.version}, this worker "
                              f"{PROTOCOL_VERSION}: install the same loadgen version on the master and every worker")
                continue
            except FrameError as exc:
                log.warning("dropped a malformed frame from the master: %s", exc)
                continue
            self.last_master = self.patience.heard()
            try:
                self._handle(message)
            except Exception as exc:  # noqa: BLE001 - report to the master, keep running
                log.exception("error handling %s", message.type)
                self.send(Warning_(kind="worker", message=f"{self.worker_id}: {type(exc).__name__}: {exc}"))

    def _refused(self, reason: str) -> None:
        print(f"loadgen: error: {reason}", file=sys.stderr, flush=True)
        self.request_quit(2)

    def _handle(self, message: Message) -> None:
        if isinstance(message, Ack):
            self._acked(message)
        elif isinstance(message, Welcome):
            self._welcomed(message)
        elif isinstance(message, Reject):
            self._refused(f"the master refused this worker: {message.reason}")
        elif isinstance(message, Start):
            self._start(message)
        elif isinstance(message, (Target, Rate)):
            if self.assignment is not None and message.test_id == self.test_id:
                self.assignment.apply(message)
        elif isinstance(message, Custom):
            if self.assignment is not None:
                self.assignment.deliver(message)
        elif isinstance(message, Stop):
            if message.test_id != self.test_id:
                return
            if self._state == SessionState.STOPPING:  # a second Stop (a second Ctrl-C on the master): no more waiting
                if message.timeout <= 0 and self.env is not None:
                    force = getattr(self.env.runner, "force_stop", None)
                    if force is not None:
                        force()
                return
            self._move(SessionState.STOPPING)
            if self.assignment is not None:
                self.assignment.closing = True
            gevent.spawn(self._stop, message.timeout)
        elif isinstance(message, Quit):
            if self.stay:
                print(f"loadgen worker {self.worker_id}: the master exited ({message.reason}); waiting for the "
                      "next one", file=sys.stderr, flush=True)
                gevent.spawn(self._forget_master, False)
            else:
                gevent.spawn(self._leave, 0.0)
        elif isinstance(message, MasterHeartbeat):
            if self.welcomed and message.master_id and self.master_id and message.master_id != self.master_id:
                print(f"loadgen worker {self.worker_id}: a new master answers on {self.endpoint}; rejoining",
                      file=sys.stderr, flush=True)
                self._forget_master(reconnect=False)
            elif not self.welcomed:
                self.send(self._hello())

    def _welcomed(self, message: Welcome) -> None:
        if self.master_id and message.master_id != self.master_id and self.assignment is not None:
            print(f"loadgen worker {self.worker_id}: a new master answers; its predecessor's test is dropped",
                  file=sys.stderr, flush=True)
            self._drop_test()
        if not self.welcomed:
            print(f"loadgen worker {self.worker_id}: joined the master", file=sys.stderr, flush=True)
        self.welcomed = self.ever_welcomed = True
        self.master_id = message.master_id
        if self.assignment is not None:
            self.beat()  # renew the lease now, not at the next beat
            if self._reconnected:
                self.assignment.push(reconnected=True)  # every delta not acknowledged, again
        self._reconnected = False

    def _acked(self, ack: Ack) -> None:
        """The master answered a heartbeat (or acknowledged a final delta: ``seq`` 0)."""
        now = time.monotonic()
        if ack.seq:
            sent = self.lease.answered(ack.seq, ack.lease)
            if sent is not None:
                self.clock.sample(sent, ack.clock, now)
        if ack.lease < 0:
            self.lease.deny()
        work = self.assignment
        if work is None:
            return
        if ack.test_id and ack.test_id != self.test_id:
            if self._state != SessionState.STOPPING:
                print(f"loadgen worker {self.worker_id}: the master has moved on from this test; dropping it",
                      file=sys.stderr, flush=True)
                gevent.spawn(self._drop_test)
            return
        work.renewed()
        work.acknowledged(ack.stats)
        if ack.desired:
            desired = decode_map(ack.desired)
            if isinstance(desired, (Target, Rate)) and desired.test_id == self.test_id:
                work.apply(desired)
        if self._state == SessionState.RUNNING:
            work.push()

    # ---- a test ------------------------------------------------------------------------------------------
    def _start(self, message: Start) -> None:
        if self.assignment is not None:
            if message.test_id == self.test_id:
                self.send(Started(test_id=message.test_id, run=self.assignment.run))  # the same Start again
                return
            self._end_test(timeout=0.0, send_final=True)
        self.test_id = message.test_id
        try:
            env = self.preparation.environment(message, self._warn)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the master's to report
            self.preparation.clean()
            error = str(exc) if isinstance(exc, CommandError) else f"{type(exc).__name__}: {exc}"
            print(f"loadgen worker {self.worker_id}: cannot start the test: {error}", file=sys.stderr, flush=True)
            self.send(Started(test_id=message.test_id, ok=False, error=error))
            return
        self._move(SessionState.RUNNING)
        env.recorder.flush()  # counters start from here
        self.clock.one_way(message.clock, time.monotonic())
        self.lease.duration = message.lease
        self.assignment = Assignment(message.test_id, env, self.send, self.lease, self.clock, self.worker_id,
                                     histograms_every=message.histograms_every)
        self.send(Started(test_id=message.test_id, run=self.assignment.run))
        self.assignment.started()
        self.beat()  # the answer grants the lease: no user runs before

    def _warn(self, kind: str, message: str, key: str) -> None:
        self.send(Warning_(kind=kind, message=message, key=key))

    def _stop(self, timeout: float) -> None:
        self._end_test(timeout=timeout, send_final=True)
        if not self.stay:
            self.send(Bye(reason="test finished"))
            gevent.sleep(0.2)
            self.request_quit(0)

    def _end_test(self, timeout: float, send_final: bool) -> None:
        """Stop this test's users; ``send_final``: deliver its last delta, waiting a while for the ack."""
        work = self.assignment
        if work is None:
            self._move(SessionState.IDLE)
            return
        self._move(SessionState.STOPPING)
        try:
            if send_final:
                work.end(timeout)
                if self.welcomed and not work.wait_delivered(FINAL_DELIVERY):
                    print(f"loadgen worker {self.worker_id}: the master did not acknowledge the last numbers "
                          f"within {FINAL_DELIVERY:g} s; it reports them missing", file=sys.stderr, flush=True)
            else:
                work.drop()
        finally:
            if self.assignment is work:
                self.assignment = None
            self._move(SessionState.IDLE)
            self.preparation.clean()

    def _drop_test(self) -> None:
        """Forget the test without a final delta; the next introduction is a fresh session."""
        self._end_test(timeout=0.0, send_final=False)
        self.lease.revoke()
        self.session = uuid.uuid4().hex[:12]

    def _shutdown(self) -> None:
        self._end_test(timeout=0.0, send_final=True)
        gevent.sleep(0.1)
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self._close_link(linger=200)

    def _close_link(self, linger: int) -> None:
        self.link.close(linger)

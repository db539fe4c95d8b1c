"""The master's intake of deltas: each merged exactly once and in order, in its own greenlet, so the
receive loop (which stamps liveness) never waits behind a merge."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import gevent
from gevent.event import Event

from loadgen.fleet.ledger import Ledger, Verdict
from loadgen.fleet.peers import Peer
from loadgen.fleet.protocol import Stats
from loadgen.model.notices import Notice
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.wire import WireError, decode_delta

log = logging.getLogger("loadgen.fleet.intake")
MERGE_TURN = 0.002  # seconds of merging before the other greenlets get a turn
GATHER = 0.005  # seconds a wake-up waits for more deltas (a large fleet's arrive every millisecond)


class Intake:
    """Queues deltas as they arrive and merges them into the aggregate; the ledgers say what to acknowledge."""

    def __init__(self, aggregate: Aggregate, on_final: Callable[[Peer], None],
                 notify: Callable[[Notice], None]) -> None:
        self.aggregate = aggregate
        self._on_final = on_final
        self._notify = notify
        self.test_id = ""
        self.merging = True  # until the report is written
        self.ledgers: dict[tuple[str, str], Ledger] = {}
        self.bad = 0
        self.late = 0  # merged although their worker had been marked lost meanwhile
        self._queue: deque[tuple[Peer, Stats, bool]] = deque()
        self._ready = Event()
        self._greenlet = gevent.spawn(self._merge_loop)

    def begin(self, test_id: str) -> None:
        self.test_id = test_id
        self.ledgers.clear()
        self.merging = True

    def accept(self, peer: Peer, message: Stats, lost: bool) -> None:
        """From the receive loop: queue it (cheap); the merge happens in the merge greenlet."""
        if message.run:
            peer.run = message.run
        self._queue.append((peer, message, lost))
        self._ready.set()

    def acknowledged(self, peer: Peer) -> int:
        """The highest delta number of the peer's current run merged with none missing below it."""
        ledger = self.ledgers.get((peer.id, peer.run))
        return ledger.acknowledged if ledger is not None else 0

    def drain(self, timeout: float) -> int:
        """Wait until everything received has been merged (at most ``timeout`` s); returns what is left."""
        with gevent.Timeout(timeout, False):
            while self._queue:
                gevent.sleep(0.01)
        return len(self._queue)

    def _merge_loop(self) -> None:
        queue = self._queue
        while True:
            self._ready.wait()
            gevent.sleep(GATHER)  # let a few more arrive: one wake-up merges them all
            self._ready.clear()
            turn_ends = time.monotonic() + MERGE_TURN
            while queue:
                peer, message, lost = queue.popleft()
                try:
                    self._merge(peer, message, lost)
                except WireError as exc:
                    self.bad += 1
                    log.debug("dropped a delta from %s: %s", peer.id, exc)
                except Exception:  # noqa: BLE001 - a delta must never stop the intake
                    self.bad += 1
                    log.debug("error merging a delta from %s", peer.id, exc_info=True)
                if time.monotonic() > turn_ends:  # the receive loop, the ticks and the heartbeats go between
                    gevent.sleep(0)
                    turn_ends = time.monotonic() + MERGE_TURN

    def _merge(self, peer: Peer, message: Stats, lost: bool) -> None:
        if message.test_id != self.test_id or not self.test_id or not self.merging:
            return  # a previous test's numbers, or the report is being written
        run = message.run
        ledger = self.ledgers.get((peer.id, run))
        if ledger is None:
            ledger = self.ledgers[(peer.id, run)] = Ledger()
        last = message.last or message.seq
        if message.seq:
            verdict = ledger.judge(message.seq, last)
            if verdict in (Verdict.DUPLICATE, Verdict.EARLY):
                return
            if verdict is Verdict.OVERLAP:
                self._notify(Notice("worker", f"worker {peer.id} resent deltas {message.seq}-{last} merged with "
                                    "some the master already had; they are left out (their requests are missing)",
                                    f"overlap:{peer.id}"))
                return
        delta = decode_delta(message.delta)
        if lost:
            self.late += 1
        # Numbers a worker reports are never discarded, even when it was marked lost meanwhile: the requests
        # reached the target. Each goes into the second it measured, when its worker knew the master's clock.
        self.aggregate.add_delta(peer.id, delta, at=message.end if message.end >= 0 else None)
        if message.final:
            self._on_final(peer)

"""The master's door: frames it cannot use (malformed, from strangers, of another protocol version) are
counted, answered at most once a second per peer, and never fatal; at the end of a test they become warnings."""

from __future__ import annotations

import sys
from collections.abc import Callable

from loadgen.fleet.link import printable
from loadgen.fleet.protocol import MAX_HELLO_BYTES, PROTOCOL_VERSION, MasterHeartbeat, Message, Reject
from loadgen.model.notices import Notice

MAX_REMEMBERED = 10_000  # strangers answered recently; forgotten all at once past this
MAX_REFUSED = 1000  # refused peers named once each


class Gate:
    def __init__(self, master_id: str, send: Callable[[bytes, Message], None], clock: Callable[[], float]) -> None:
        self.master_id = master_id
        self.send = send
        self.clock = clock
        self.bad_frames = 0  # malformed, unknown type, wrong version, invalid content
        self.stray_frames = 0  # well-formed, from a peer that never said hello (unauthenticated)
        self.late_deltas = 0  # deltas merged although their worker had been marked lost
        self._answered: dict[bytes, float] = {}
        self._refused: set[bytes] = set()

    def unreadable(self, frames: list[bytes], known: bool) -> bool:
        """Frames never decoded: not two parts, or more than a hello from a peer that has not said hello."""
        if len(frames) != 2:
            self.bad_frames += 1
            return True
        if not known and len(frames[1]) > MAX_HELLO_BYTES:
            self.stray(frames[0])
            return True
        return False

    def stray(self, identity: bytes) -> None:
        """A frame from a peer that never said hello: dropped and counted. A worker of a previous master
        (restarted on the same address) gets a heartbeat with our id, so that it introduces itself at once."""
        self.stray_frames += 1
        now = self.clock()
        if now - self._answered.get(identity, 0.0) >= 1.0:
            if len(self._answered) > MAX_REMEMBERED:
                self._answered.clear()
            self._answered[identity] = now
            self.send(identity, MasterHeartbeat(master_id=self.master_id))

    def refuse_version(self, identity: bytes, version: object) -> Notice | None:
        """A peer of another protocol version: told why, and named once (the returned notice)."""
        self.bad_frames += 1
        name = printable(identity)
        reason = (f"protocol version {str(version)[:20]} does not match the master's {PROTOCOL_VERSION}: "
                  "install the same loadgen version on the master and every worker")
        self.send(identity, Reject(reason=reason))
        if identity in self._refused or len(self._refused) >= MAX_REFUSED:
            return None
        self._refused.add(identity)
        print(f"loadgen master: refused worker {name}: {reason}", file=sys.stderr, flush=True)
        return Notice("worker", f"refused worker {name}: {reason}", f"version:{name}")

    def taken(self, identity: bytes, shown: str) -> None:
        """A hello under an id another connection already holds (workers that share a key could try)."""
        self.bad_frames += 1
        self.send(identity, Reject(reason=f"worker id {shown} is taken by another connection"))
        if identity not in self._refused and len(self._refused) < MAX_REFUSED:
            self._refused.add(identity)
            print(f"loadgen master: refused a second connection under worker id {shown}", file=sys.stderr,
                  flush=True)

    def notices(self, curve_refused: int, impostor_frames: int = 0) -> list[Notice]:
        """What the report says about the link at the end of a test."""
        notices = []
        if self.bad_frames or self.stray_frames:
            notices.append(Notice("protocol", f"dropped {self.bad_frames} malformed or unknown frames and "
                                  f"{self.stray_frames} frames from peers that never said hello", "frames"))
        if self.late_deltas:
            notices.append(Notice("worker", f"{self.late_deltas} deltas arrived from workers already marked lost; "
                                  "they are counted", "late"))
        if curve_refused:
            notices.append(Notice("security", f"refused {curve_refused} connections whose CURVE key is not "
                                  "allowed", "curve"))
        if impostor_frames:
            notices.append(Notice("security", f"dropped {impostor_frames} frames sent under another worker's id "
                                  "(unread: their connection's key does not own that id)", "impostor"))
        return notices

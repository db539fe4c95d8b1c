"""A script's own messages between the master and its workers (Locust's ``runner.send_message`` and
``register_message``), and ``report_to_master`` data riding to the master's ``worker_report`` listeners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadgen.fleet.peers import Peer, PeerState
from loadgen.fleet.protocol import REPORT, Custom, Message

MAX_NAME = 200
Receiver = Callable[[str, str, Any], None]  # (worker id, name, data)


class CustomMessages:
    """The master's side: received messages go to ``receiver``; ``send`` reaches one worker or every one."""

    def __init__(self, peers: dict[bytes, Peer], send: Callable[[Peer, Message], None]) -> None:
        self._peers = peers
        self._send = send
        self.receiver: Receiver | None = None

    def received(self, peer: Peer, message: Custom) -> None:
        if self.receiver is not None:
            self.receiver(peer.id, message.name[:MAX_NAME], message.data)

    def send(self, name: str, data: Any, client_id: str | None = None) -> None:
        for peer in list(self._peers.values()):
            if peer.state not in (PeerState.IDLE, PeerState.STARTING, PeerState.RUNNING):
                continue
            if client_id is None or peer.id == client_id:
                self._send(peer, Custom(name=name, data=data))


def is_report(name: str) -> bool:
    return name == REPORT

"""What the aggregate knows of each worker process."""

from __future__ import annotations

from typing import Any


class WorkerRow:
    """One worker process's users, counts and health, as its deltas report them."""

    __slots__ = ("id", "host", "state", "users", "peak_users", "requests", "failures", "cpu_percent", "rss_mb",
                 "processes", "peer", "lost_process")

    def __init__(self, worker_id: str, host: str, processes: int = 1) -> None:
        self.id = worker_id
        self.host = host
        self.state = "running"
        self.users = 0
        self.peak_users = 0
        self.requests = 0
        self.failures = 0
        self.cpu_percent = 0.0
        self.rss_mb = 0.0
        self.processes = processes
        self.peer = worker_id  # the master's peer this row belongs to (a machine, for a process's row)
        self.lost_process = False  # a process of a machine that died or fell silent (its machine may run on)

    def as_dict(self, final: bool = False) -> dict[str, Any]:
        """Live: current users; final (the report): the most users this worker ran."""
        return {"id": self.id, "host": self.host, "state": self.state,
                "users": self.peak_users if final else self.users,
                "requests": self.requests, "failures": self.failures,
                "cpu_percent": round(self.cpu_percent, 1), "rss_mb": round(self.rss_mb, 1),
                "processes": self.processes}

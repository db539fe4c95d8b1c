"""The master's split of the fleet target over its running workers, as the desired state each is sent:
its users or rate, a version (so a repeat changes nothing), its slot in the fleet (phase spreading), and
on a handover the pace at which it gives users up (pure: no sockets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loadgen.fleet.protocol import Rate, Target
from loadgen.fleet.shares import handover_seconds, shares
from loadgen.model.plan import TestPlan
from loadgen.model.targets import LoadTarget
from loadgen.script.loader import Script


class Distributor:
    def __init__(self, script: Script) -> None:
        classes = script.user_classes
        self.weights = {name: cls.weight for name, cls in classes.items()}
        self.fixed = {name: cls.fixed_count for name, cls in classes.items()}
        self.plan: TestPlan | None = None
        self.target: LoadTarget | None = None
        self.version = 0
        self._assigned: dict[str, dict[str, int]] = {}  # the users per class each worker was last sent

    def begin(self, plan: TestPlan) -> None:
        self.plan = plan
        self._assigned = {}

    def split(self, test_id: str, workers: Sequence[str], handover: bool = False,
              sizes: Mapping[str, int] | None = None) -> dict[str, Target | Rate]:
        """Each worker's desired state (``workers`` in a stable order: it gives the slots; ``sizes``: the
        processes of each, a machine's share and slots in proportion)."""
        if not workers or self.plan is None or self.target is None:
            return {}
        previous = self._assigned
        messages = shares(test_id, list(workers), self.target, self.plan, self.weights, self.fixed, previous, sizes)
        self._assigned = {w: m.counts for w, m in messages.items() if isinstance(m, Target)}
        seconds = handover_seconds(previous, messages) if handover else 0.0
        self.version += 1
        sizes = sizes or {}
        total = sum(max(1, sizes.get(w, 1)) for w in workers)
        first = 0
        for worker in workers:
            message = messages[worker]
            message.version, message.slot, message.slots = self.version, first, total  # its first process's slot
            first += max(1, sizes.get(worker, 1))
            if isinstance(message, Target):
                message.handover = seconds
        return messages

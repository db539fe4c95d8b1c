"""When a load generator's own CPU makes its numbers suspect (pure; fed one sample a second)."""

from __future__ import annotations

from loadgen.model.notices import Notice

CPU_WARN_PERCENT = 90.0
CPU_WARN_SECONDS = 5


class CpuWatch:
    """Says once when a process has been above ``CPU_WARN_PERCENT`` for ``CPU_WARN_SECONDS`` samples in a row
    (one sample a second)."""

    __slots__ = ("hot_samples",)

    def __init__(self) -> None:
        self.hot_samples = 0

    def observe(self, cpu_percent: float) -> bool:
        """True on the sample that completes a hot streak (once per streak)."""
        if cpu_percent <= CPU_WARN_PERCENT:
            self.hot_samples = 0
            return False
        self.hot_samples += 1
        return self.hot_samples == CPU_WARN_SECONDS


def cpu_remedy(processes: int | None) -> str:
    """What adds CPU: ``processes`` None for ``loadgen run`` (this process), else a worker machine's processes."""
    if processes is None:
        return "rerun with --processes auto (one process per core) or spread the load over machines (loadgen master)"
    if processes <= 1:
        return "start that worker with 'loadgen worker --processes auto' (one process per core)"
    return "add worker machines"


def cpu_notice(who: str, key: str, processes: int | None = None) -> Notice:
    """The one wording of the CPU warning, for ``loadgen run`` and for a fleet's workers."""
    return Notice("cpu", f"{who} has used over {CPU_WARN_PERCENT:.0f}% CPU for {CPU_WARN_SECONDS} s: the numbers "
                  f"may now measure the generator, not the target; {cpu_remedy(processes)}", key)

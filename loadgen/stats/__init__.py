"""Pure statistics: histograms, endpoint entries, error tables, deltas, the aggregate, snapshots, reports.

``Aggregate`` is imported on first use: it merges with numpy, which a worker (that only records and
encodes) never loads.
"""

from typing import TYPE_CHECKING, Any

from loadgen.stats.endpoint import Entry
from loadgen.stats.errors import ErrorTable, normalise
from loadgen.stats.histogram import Histogram
from loadgen.stats.recorder import Recorder, StatsDelta
from loadgen.stats.report import latency_summary

if TYPE_CHECKING:
    from loadgen.stats.aggregate import Aggregate

__all__ = ["Aggregate", "Entry", "ErrorTable", "Histogram", "Recorder", "StatsDelta", "latency_summary",
           "normalise"]


def __getattr__(name: str) -> Any:
    if name == "Aggregate":
        from loadgen.stats.aggregate import Aggregate

        return Aggregate
    raise AttributeError(f"module 'loadgen.stats' has no attribute {name!r}")

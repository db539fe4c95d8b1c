"""Pure statistics: histograms, endpoint entries, error tables, deltas and the test-wide aggregate."""

from loadgen.stats.aggregate import Aggregate, latency_summary
from loadgen.stats.entry import Entry
from loadgen.stats.errors import ErrorTable, normalise
from loadgen.stats.histogram import Histogram
from loadgen.stats.recorder import Recorder, StatsDelta

__all__ = ["Aggregate", "Entry", "ErrorTable", "Histogram", "Recorder", "StatsDelta", "latency_summary",
           "normalise"]

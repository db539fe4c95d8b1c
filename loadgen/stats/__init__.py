"""Pure statistics: histograms, endpoint entries, error tables, deltas, the aggregate, snapshots, reports."""

from loadgen.stats.aggregate import Aggregate
from loadgen.stats.endpoint import Entry
from loadgen.stats.errors import ErrorTable, normalise
from loadgen.stats.histogram import Histogram
from loadgen.stats.recorder import Recorder, StatsDelta
from loadgen.stats.report import latency_summary

__all__ = ["Aggregate", "Entry", "ErrorTable", "Histogram", "Recorder", "StatsDelta", "latency_summary",
           "normalise"]

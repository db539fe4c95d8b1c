"""Live outputs attached to a running test (stream, web, Prometheus). Placeholder until they land."""

from __future__ import annotations

from typing import Any


class LiveOutputs:
    """The set of live outputs of one test; each gets every snapshot and the final report."""

    def __init__(self) -> None:
        self.outputs: list[Any] = []

    def on_report(self, report: dict) -> None:
        for output in self.outputs:
            output.on_report(report)

    def close(self) -> None:
        for output in self.outputs:
            output.close()


def attach_outputs(controller: Any, options: Any) -> LiveOutputs:
    """Start the live outputs the options ask for and subscribe them to the controller's snapshots."""
    return LiveOutputs()

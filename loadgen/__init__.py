"""loadgen: distributed load generation for HTTP(S) services.

The script API (``User``, ``HttpUser``, ``task``, wait times) is imported lazily so that
``import loadgen.api`` from another application never pulls in gevent.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "User": "loadgen.script.users",
    "HttpUser": "loadgen.script.users",
    "StopUser": "loadgen.script.users",
    "RescheduleTask": "loadgen.script.users",
    "RescheduleTaskImmediately": "loadgen.script.users",
    "task": "loadgen.script.users",
    "tag": "loadgen.script.tags",
    "between": "loadgen.script.pacing",
    "constant": "loadgen.script.pacing",
    "constant_pacing": "loadgen.script.pacing",
    "constant_throughput": "loadgen.script.pacing",
    "LoadShape": "loadgen.script.shapes",
    "poisson": "loadgen.script.pacing",
    "TaskSet": "loadgen.script.tasksets",
    "SequentialTaskSet": "loadgen.script.tasksets",
    "InterruptTaskSet": "loadgen.script.tasksets",
    "MarkovTaskSet": "loadgen.script.markov",
    "transition": "loadgen.script.markov",
    "transitions": "loadgen.script.markov",
    "FastHttpUser": "loadgen.script.fasthttp",
    "events": "loadgen.script.events",
    "LoadTestShape": "loadgen.script.locust_compat",
    "run_single_user": "loadgen.engine.single_user",
    "StopTest": "loadgen.script.users",
    "CatchResponseError": "loadgen.client.errors",
    "ResponseError": "loadgen.client.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loadgen' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

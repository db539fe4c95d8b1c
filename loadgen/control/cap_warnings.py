"""Say when a cap is hit, with what to do: the endpoint cap (group URLs with ``name=``) and the error cap
(the endpoint's "other errors" row keeps examples). Counts are live: the controller re-warns each second."""

from __future__ import annotations

from loadgen.model.notices import Notice
from loadgen.stats.aggregate import Aggregate
from loadgen.stats.errors import MAX_ERRORS_PER_ENDPOINT, OTHER_ERRORS
from loadgen.stats.recorder import MAX_ENDPOINTS, OTHER_ENDPOINTS


def endpoint_cap(aggregate: Aggregate) -> Notice | None:
    """The other-endpoints rows' requests, with three example names and the ``name=`` advice."""
    rows = [entry for (_, name), entry in aggregate.entries.items() if name == OTHER_ENDPOINTS] \
        if len(aggregate.entries) >= MAX_ENDPOINTS or aggregate.overflowed else []
    if not rows:
        return None
    requests = sum(entry.requests + entry.interrupted for entry in rows)
    examples = ", ".join(f"{method} {name}" for method, name in aggregate.overflowed) or "-"
    return Notice("endpoints", f"more than {MAX_ENDPOINTS} endpoint names: {requests:,} requests went to the "
                  f"'{OTHER_ENDPOINTS}' row, e.g. {examples}; group URLs with name=, e.g. "
                  "self.client.get(f\"/item/{item_id}\", name=\"/item/[id]\")", "endpoint-cap")


def error_caps(aggregate: Aggregate) -> list[Notice]:
    """One notice per endpoint whose distinct messages passed the cap, with a few of the messages."""
    notices = []
    errors = aggregate.errors
    for method, name, count in errors.capped():
        samples = "; ".join(errors.samples.get((method, name), ()))
        notices.append(Notice("errors", f"{method} {name} had more than {MAX_ERRORS_PER_ENDPOINT} distinct error "
                              f"messages: {count:,} errors are counted as '{OTHER_ERRORS}' (e.g. {samples}); "
                              "messages are grouped once numbers and ids are replaced: put the variable part in "
                              "the response check, not the message", f"error-cap:{method} {name}"))
    return notices[:20]

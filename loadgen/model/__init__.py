"""Pure records and arithmetic: options, plan, load targets, stages, durations, thresholds, dispatch."""

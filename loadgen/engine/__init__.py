"""Load generation in one process: runner, load models, environment, self-monitoring, stalls."""

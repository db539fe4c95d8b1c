"""One test over a fleet: the controller, local and distributed runs, reports."""

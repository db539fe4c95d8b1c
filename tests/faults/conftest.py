"""The fault suite runs only under ``make faults`` (CI runs it): it needs root and network namespaces."""

"""The NVI domain: records, statuses, points and migrations. Pure Python, no I/O."""

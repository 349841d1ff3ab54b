"""Launcher: where the steps of a full-table scan run (the run launcher itself is `nvi_batch.launcher`,
loaded by the instance, not by the code location)."""

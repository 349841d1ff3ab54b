"""Where runs and the steps of full scans are started: the routing run launcher (local / ECS / AWS Batch)
and the ECS executor of full scans. The only code written against Dagster's private API: a run launcher
and a step-delegating executor have no public one (each private import says what it is for)."""

from nvi_batch.launcher.routing import BatchRunLauncher, EnvironmentPassingEcsRunLauncher, RoutingRunLauncher

__all__ = ["BatchRunLauncher", "EnvironmentPassingEcsRunLauncher", "RoutingRunLauncher"]

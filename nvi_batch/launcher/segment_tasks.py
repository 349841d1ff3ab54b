"""The executor that runs each step of a full scan as an ECS task of its own, next to the run's task.

It lives beside the routing run launcher because it is made of the launcher's parts: its steps run the
router's ECS launcher's task definition, with the environment the router gives a heavy run. Dagster has
no public way to build a step-delegating executor, and dagster-aws's `ecs_executor` insists that the
instance's run launcher be an `EcsRunLauncher` (here it is the router), so the executor is assembled
from dagster-aws's ECS step handler and Dagster's step-delegating executor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.execution.retries import RetryMode, get_retries_config  # no public retry config
from dagster._core.executor.step_delegating import StepDelegatingExecutor  # none public for custom steps
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.ecs.container_context import EcsContainerContext
from dagster_aws.ecs.executor import EcsStepHandler

from nvi_batch.launcher.routing import RoutingRunLauncher

TASK_METADATA_VARIABLE = "ECS_CONTAINER_METADATA_URI_V4"
DEFAULT_CONCURRENT_SEGMENTS = 10

MAX_CONCURRENT = dg.Field(
    int, default_value=DEFAULT_CONCURRENT_SEGMENTS, description="How many segment steps may run at once."
)


@dg.executor(
    name="segment_tasks",
    config_schema={"max_concurrent": MAX_CONCURRENT, "retries": get_retries_config()},
    requirements=dg.multiple_process_executor_requirements(),
)
def segment_tasks(init_context: dg.InitExecutorContext) -> StepDelegatingExecutor:
    """Each step an ECS task of the run launcher's task definition, in the cluster and network of the
    task the run itself runs in (dagster-aws's ECS step handler, on the routing launcher's ECS side)."""
    if not os.environ.get(TASK_METADATA_VARIABLE):
        raise dg.DagsterInvariantViolationError(
            f"segment_tasks starts each step as an ECS task next to the run's own, but this run is not in"
            f" an ECS task ({TASK_METADATA_VARIABLE} is not set). Full scans run where the code server runs."
        )
    router = init_context.instance.run_launcher
    if not isinstance(router, RoutingRunLauncher):
        raise dg.DagsterInvariantViolationError(
            f"segment_tasks needs the instance's run launcher to be {RoutingRunLauncher.__name__} with an"
            f" `ecs` section (deploy/dagster.yaml), not {type(router).__name__}."
        )
    config = init_context.executor_config
    return StepDelegatingExecutor(
        SegmentTaskHandler(router.ecs_launcher, router.worker_environment()),
        retries=RetryMode.from_config(config["retries"]),
        max_concurrent=config["max_concurrent"],
        should_verify_step=True,
    )


class SegmentTaskHandler(EcsStepHandler):
    """dagster-aws's ECS step handler, given the routing launcher's ECS launcher.

    The handler looks its launcher up on the instance, where the router stands, so the two places that
    do are pointed at the ECS launcher. Steps run the launcher's task definition (the run's image and
    environment, container `run`) and get the same environment a heavy run gets from the router.
    """

    def __init__(self, ecs_launcher: EcsRunLauncher, environment: Sequence[Mapping[str, str]]):
        super().__init__(
            run_launcher=ecs_launcher,
            run_task_kwargs={"taskDefinition": ecs_launcher.task_definition},
            cpu=None,
            memory=None,
            ephemeral_storage=None,
            task_overrides=None,
        )
        self._ecs_launcher = ecs_launcher
        self._environment = list(environment)

    def _get_container_context(self, step_handler_context) -> EcsContainerContext:
        return EcsContainerContext.create_for_run(step_handler_context.dagster_run, self._ecs_launcher)

    def _get_run_task_kwargs(self, run, args, step_key, step_tags, step_handler_context, container_context):
        on_ecs = _Overlay(
            step_handler_context, instance=_Overlay(step_handler_context.instance, run_launcher=self._ecs_launcher)
        )
        kwargs = super()._get_run_task_kwargs(run, args, step_key, step_tags, on_ecs, container_context)
        container_name = self._ecs_launcher.get_container_name(container_context)
        for override in kwargs["overrides"]["containerOverrides"]:
            if override["name"] == container_name:
                override["environment"] = [*self._environment, *override.get("environment", [])]
        return kwargs


class _Overlay:
    """`base` with some attributes replaced, everything else read through."""

    def __init__(self, base: Any, **replaced: Any):
        self._base = base
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

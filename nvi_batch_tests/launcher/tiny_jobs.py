"""Jobs for the router tests to launch, behind a real gRPC code server.

Kept apart from the test module so that the code server and every run worker import only Dagster.
"""

import time

import dagster as dg

YEARS = dg.StaticPartitionsDefinition(["2022", "2023", "2024"])


@dg.op
def do_nothing() -> None:
    """The work does not matter here, only where it runs."""


@dg.op
def wait_to_be_terminated() -> None:
    time.sleep(60)


@dg.job(partitions_def=YEARS, executor_def=dg.in_process_executor)
def tiny_job() -> None:
    do_nothing()


@dg.job(partitions_def=YEARS, executor_def=dg.in_process_executor)
def slow_job() -> None:
    wait_to_be_terminated()


defs = dg.Definitions(jobs=[tiny_job, slow_job])

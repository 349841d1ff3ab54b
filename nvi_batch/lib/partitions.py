"""Which partitions exist: one per reporting year that has a period in the store.

Years are dynamic partitions, so a new period becomes a partition without a code deploy: the
`reporting_years_sensor` adds them (it runs by default wherever a daemon runs), `nvi-batch seed`,
`demo` and `start` add the ones they need at once, and a run of a year adds its own year when the store
has its period, so that `dagster job execute` works on a fresh instance too.
"""

from collections.abc import Callable, Iterable

import dagster as dg

from nvi_batch.lib.tags import PARTITION_TAG

reporting_year_partitions = dg.DynamicPartitionsDefinition(name="reporting_years")


def add_reporting_years(instance: dg.DagsterInstance, years: list[str]) -> list[str]:
    """Register the years the instance does not know yet; returns the ones added."""
    known = set(instance.get_dynamic_partitions(reporting_year_partitions.name))
    new = sorted(set(years) - known)
    if new:
        instance.add_dynamic_partitions(reporting_year_partitions.name, new)
    return new


def add_year_of_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, period_years: Callable[[], Iterable[str]]
) -> None:
    """Register the run's year if the instance lacks it and the store has its period."""
    year = run.tags.get(PARTITION_TAG)
    if year is None or instance.has_dynamic_partition(reporting_year_partitions.name, year):
        return
    if year in set(period_years()):
        add_reporting_years(instance, [year])

"""Which partitions exist: one per reporting year that has a period in the store.

Years are dynamic partitions, so a new period becomes a partition without a code deploy: the
`reporting_years_sensor` adds them, and `nvi-batch seed` / `make demo` add them at once.
"""

import dagster as dg

reporting_year_partitions = dg.DynamicPartitionsDefinition(name="reporting_years")


def add_reporting_years(instance: dg.DagsterInstance, years: list[str]) -> list[str]:
    """Register the years the instance does not know yet; returns the ones added."""
    known = set(instance.get_dynamic_partitions(reporting_year_partitions.name))
    new = sorted(set(years) - known)
    if new:
        instance.add_dynamic_partitions(reporting_year_partitions.name, new)
    return new

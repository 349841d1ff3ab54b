"""Operations: sensors that retry and redrive, work items, schedules, freshness and alerts."""

import dagster as dg

from nvi_batch.defs.operations import freshness, schedules, sensors

defs = dg.Definitions.merge(sensors.defs, schedules.defs, freshness.defs)

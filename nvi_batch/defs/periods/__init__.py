"""Periods: the year's reporting period, refreshed under its lock."""

from nvi_batch.defs.periods.assets import defs

__all__ = ["defs"]

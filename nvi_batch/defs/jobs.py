"""Jobs users launch from the UI, the CLI, sensors and schedules."""

import dagster as dg

from nvi_batch.defs.assets import candidates, periods
from nvi_batch.defs.partitions import reporting_year_partitions

refresh_candidates_job = dg.define_asset_job(
    "refresh_candidates_job",
    selection=[candidates],
    partitions_def=reporting_year_partitions,
    description="REFRESH_CANDIDATES for one reporting year.",
)

refresh_periods_job = dg.define_asset_job(
    "refresh_periods_job",
    selection=[periods],
    partitions_def=reporting_year_partitions,
    description="REFRESH_PERIODS for one reporting year.",
)

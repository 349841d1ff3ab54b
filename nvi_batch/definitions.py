"""The one Definitions object the code location loads."""

import dagster as dg

from nvi_batch.defs.assets import candidates, periods
from nvi_batch.defs.jobs import refresh_candidates_job, refresh_periods_job
from nvi_batch.defs.resources import resources_for_deployment

defs = dg.Definitions(
    assets=[periods, candidates],
    jobs=[refresh_candidates_job, refresh_periods_job],
    resources=resources_for_deployment(),
)

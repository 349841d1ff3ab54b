"""A code location with only the full-scan job, for the multiprocess test: its step processes import
this module, which is quick, where the whole `nvi_batch.definitions` takes seconds per process."""

import dagster as dg

from nvi_batch.defs.candidates.full_scans import refresh_all_candidates_job
from nvi_batch.lib.resources import resources_for_deployment

defs = dg.Definitions(jobs=[refresh_all_candidates_job], resources=resources_for_deployment())

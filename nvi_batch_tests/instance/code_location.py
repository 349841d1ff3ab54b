"""The code location the instance tests load in-process: the candidate assets and jobs, the work-item
job, the two sensors and the nightly schedule under test, as the deployment defines them, with the
local deployment's resources except for the candidates store, which an environment variable names.

The variable is read when a run builds its resources (an `EnvVar`), so each test points runs at its
own SQLite file although this module is imported once per process.
"""

import dagster as dg

from nvi_batch.defs.candidates import assets as candidate_assets
from nvi_batch.defs.operations.schedules import nightly_refresh_schedule
from nvi_batch.defs.operations.sensors import reporting_years_sensor, retry_sensor
from nvi_batch.defs.operations.work_items import process_work_items_job
from nvi_batch.defs.periods import assets as period_assets
from nvi_batch.lib.resources import SqlStoreResource, resources_for_deployment

STORE_URL_ENV = "NVI_INSTANCE_TEST_STORE_URL"

defs = dg.Definitions.merge(
    period_assets.defs,
    candidate_assets.defs,
    dg.Definitions(
        jobs=[process_work_items_job],
        sensors=[reporting_years_sensor, retry_sensor],
        schedules=[nightly_refresh_schedule],
        resources={
            **resources_for_deployment("local"),
            "nvi_store": SqlStoreResource(database_url=dg.EnvVar(STORE_URL_ENV)),
        },
    ),
)

"""The code location the instance tests load in-process: the candidate assets and jobs, the work-item
job, the two sensors and the nightly schedule under test, as the deployment defines them, with the
local deployment's resources except for the candidates store, which an environment variable names.

The variable is read when a run builds its resources (an `EnvVar`), so each test points runs at its
own SQLite file although this module is imported once per process.
"""

import dagster as dg

from nvi_batch.defs import candidates as candidate_defs
from nvi_batch.defs.operations import reporting_years_sensor, retry_sensor
from nvi_batch.defs.resources import SqlStoreResource, resources_for_deployment
from nvi_batch.defs.schedules import nightly_refresh_schedule
from nvi_batch.defs.work_items import process_work_items_job

STORE_URL_ENV = "NVI_INSTANCE_TEST_STORE_URL"

defs = dg.Definitions.merge(
    candidate_defs.defs,
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

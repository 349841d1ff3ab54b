"""The one Definitions object the code location loads: each area of defs/ contributes its own."""

import dagster as dg

from nvi_batch.defs import candidates as candidate_defs
from nvi_batch.defs import freshness as freshness_defs
from nvi_batch.defs import full_scans as full_scan_defs
from nvi_batch.defs import institution_reports as institution_report_defs
from nvi_batch.defs import migrations as migration_defs
from nvi_batch.defs import operations as operation_defs
from nvi_batch.defs import reporting as reporting_defs
from nvi_batch.defs import reports as report_defs
from nvi_batch.defs import schedules as schedule_defs
from nvi_batch.defs.resources import resources_for_deployment

defs = dg.Definitions.merge(
    candidate_defs.defs,
    migration_defs.defs,
    operation_defs.defs,
    full_scan_defs.defs,
    reporting_defs.defs,
    report_defs.defs,
    institution_report_defs.defs,
    schedule_defs.defs,
    freshness_defs.defs,
    dg.Definitions(resources=resources_for_deployment()),
)

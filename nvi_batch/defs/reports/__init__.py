"""Reports: the year's report tables and the files institutions download."""

import dagster as dg

from nvi_batch.defs.reports import institution_reports, year_reports

defs = dg.Definitions.merge(year_reports.defs, institution_reports.defs)

"""Candidates: the year's refresh asset and its checks, migrations, full-table scans and reporting."""

import dagster as dg

from nvi_batch.defs.candidates import assets, full_scans, migrations, reporting

defs = dg.Definitions.merge(assets.defs, migrations.defs, full_scans.defs, reporting.defs)

"""The smallest Dagster project a user could write: one asset, one job. run_overhead.py compares with it."""

import dagster as dg


@dg.asset
def one() -> int:
    return 1


trivial_job = dg.define_asset_job("trivial_job", selection=[one])

defs = dg.Definitions(assets=[one], jobs=[trivial_job])

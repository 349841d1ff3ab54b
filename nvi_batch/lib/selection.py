"""Which assets and checks a job selects."""

import dagster as dg


def with_own_checks(asset: dg.AssetsDefinition) -> dg.AssetSelection:
    """The asset and the checks its own op evaluates, without checks defined elsewhere on it: the
    whole-store freshness checks run from their own sensor, not as a step of every year's run. Being
    one step, such a job runs in the run's own process (the in-process executor): a step process of
    its own would load the definitions a second time."""
    return dg.AssetSelection.assets(asset).without_checks() | dg.AssetSelection.checks(*asset.check_keys)

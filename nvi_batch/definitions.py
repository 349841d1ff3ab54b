"""The one Definitions object the code location loads: each room of defs/ contributes its own."""

# ruff: noqa: E402 (the warning filters below go before the imports that build the definitions)
import warnings

import dagster as dg


def silence_known_dagster_notices() -> None:
    """Dagster warns of two things it marks preview or beta: asset checks partitioned by reporting year,
    which we use on purpose (they gate each year's run), and the `owners` parameter that Dagster itself
    passes when it copies our sensors to attach resources to their jobs. Dagster is pinned to the minor
    release the tests ran with (constraints.txt), so these notices say nothing new; without the filters
    every process that loads the code prints them. Filtered by message, before the definitions are
    built: any other preview, beta or superseded notice still shows."""
    warnings.filterwarnings(
        "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
    )
    warnings.filterwarnings(
        "ignore", message="Parameter `owners` of initializer `SensorDefinition", category=dg.BetaWarning
    )


silence_known_dagster_notices()

from nvi_batch.defs import candidates, operations, periods, reports
from nvi_batch.lib.resources import resources_for_deployment

defs = dg.Definitions.merge(
    periods.defs,
    candidates.defs,
    reports.defs,
    operations.defs,
    dg.Definitions(resources=resources_for_deployment()),
)

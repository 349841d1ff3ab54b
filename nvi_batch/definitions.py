"""The one Definitions object the code location loads: each area of defs/ contributes its own."""

import dagster as dg

from nvi_batch.defs import candidates as candidate_defs
from nvi_batch.defs.resources import resources_for_deployment

defs = dg.Definitions.merge(
    candidate_defs.defs,
    dg.Definitions(resources=resources_for_deployment()),
)

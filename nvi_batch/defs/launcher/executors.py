"""Where the steps of a full-table scan run: a process of its own per segment on this machine, or, in
production, an ECS task of its own per segment (`segment_tasks`, beside the run launcher it is built
from), so that a scan spreads over as many machines as it has segments instead of waiting for a bigger
one. `resources.py` picks one per deployment.

Both cap how many segment steps run at once with `max_concurrent`, so a run config written for one
works on the other.
"""

import dagster as dg

from nvi_batch.launcher.segment_tasks import MAX_CONCURRENT, segment_tasks

__all__ = ["segment_processes", "segment_tasks"]


@dg.configured(dg.multiprocess_executor, config_schema={"max_concurrent": MAX_CONCURRENT})
def segment_processes(config: dict) -> dict:
    """Each step in a process of its own, forked from a server that imported the code location's module
    once: spawning would import it anew for every segment, seconds each."""
    return {"max_concurrent": config["max_concurrent"], "start_method": {"forkserver": {}}}



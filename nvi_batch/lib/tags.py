"""The run tags nvi_batch writes and reads, named once for the definitions, the CLI and the run launcher.

Tag values must be plain strings: Dagster's serializer refuses an Enum it does not know, so a
`JobType` or `BatchStatus` becomes its text (`str(...)`) before it is a tag.
"""

# A run's partition. Dagster documents this tag (`dagster job launch --tags '{"dagster/partition": …}'`)
# but exports no public name for it; where a request can name its partition (`dg.RunRequest(partition_key=…)`)
# Dagster sets it itself.
PARTITION_TAG = "dagster/partition"

JOB_TYPE_TAG = "nvi/job"  # the legacy job type a run does (`JobType`), or the report it builds
BATCH_STATUS_TAG = "nvi/batch_status"  # the old service's status word for the run (`BatchStatus`)
REQUEST_TAG = "nvi/request"  # the `nvi-batch start` request that created the run
TRIGGER_TAG = "nvi/trigger"  # retry or redrive: what a sensor's work-item run is for
SCOPE_TAG = "nvi/scope"  # the ledger partition of a work-item run (a year, a segment, legacy-queue)

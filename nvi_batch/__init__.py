"""nvi_batch: the batch work of the NVI candidate service as Dagster assets."""

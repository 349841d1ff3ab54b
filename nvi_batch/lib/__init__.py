"""What the rooms of defs/ share: run config, resources, partitions, tags, and the glue to the engine."""

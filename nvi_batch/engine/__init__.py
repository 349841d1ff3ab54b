"""The batch engine: scan → work items → process → conditional write, in chunks. No Dagster here."""

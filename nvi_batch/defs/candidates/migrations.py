"""MIGRATE_CANDIDATES for one reporting year: one named migration, with the S3 document only where needed."""

import threading

import dagster as dg
from pydantic import Field, field_validator

from nvi_batch.defs.operations.work_items import PROCESSOR_FACTORIES
from nvi_batch.domain.jobs import JobType
from nvi_batch.domain.migrations import (
    MIGRATIONS,
    Migration,
    document_key,
    get_migration,
    migration_job_key,
)
from nvi_batch.engine.scans import Scan
from nvi_batch.engine.step import Processor, StepReport
from nvi_batch.lib.config import StepConfig
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import NviStoreResource, PublicationSourceResource
from nvi_batch.lib.running import (
    batch_status_on_failure,
    fail_if_stopped,
    guarded_store,
    open_store,
    refuse_items_outside_year,
    report_metadata,
    run_step,
    scan_for,
    year_count,
)
from nvi_batch.lib.tags import JOB_TYPE_TAG

DEFAULT_WORKERS = 8


class MigrationOptions(dg.Config):
    migration: str = Field(description=f"The named migration to apply; one of: {', '.join(sorted(MIGRATIONS))}.")
    dry_run: bool = Field(
        default=False, description="Count the candidates that would change and show sample diffs; write nothing."
    )
    workers: int = Field(
        default=DEFAULT_WORKERS, ge=1, le=64, description="Threads processing candidates (fetching S3 documents)."
    )

    @field_validator("migration")
    @classmethod
    def _registered(cls, name: str) -> str:
        get_migration(name)
        return name


class MigrateCandidatesConfig(StepConfig, MigrationOptions):
    pass


class PeriodLookup:
    """Periods by year, each read once per run and shared by the worker threads."""

    def __init__(self, store):
        self._store = store
        self._periods = {}
        self._lock = threading.Lock()

    def get(self, year: str | None):
        if year is None:
            return None
        with self._lock:
            if year not in self._periods:
                self._periods[year] = self._store.read_period(year)
            return self._periods[year]


def migration_processor(migration: Migration, source, periods: PeriodLookup) -> Processor:
    """Fetch the document only for candidates the migration can fill from it, then apply the migration."""

    def process(candidate):
        document = source.fetch(document_key(candidate)) if migration.needs_document(candidate) else None
        period = periods.get(candidate.period_year) if migration.needs_period else None
        return migration.apply(candidate, document, period)

    return process


def work_items_processor(context: dg.OpExecutionContext, store, job_key: str, partition: str) -> Processor:
    """Retries and redrives of `MIGRATE_CANDIDATES:<migration>` items: the same migration, one thread."""
    migration = get_migration(job_key.partition(":")[2])
    return migration_processor(migration, context.resources.publications.open(), PeriodLookup(store))


PROCESSOR_FACTORIES[JobType.MIGRATE_CANDIDATES] = work_items_processor


def run_migration(
    context: dg.OpExecutionContext,
    store,
    scan: Scan,
    options: MigrationOptions,
    step_config: StepConfig,
    publications: PublicationSourceResource,
    tags_batch_status: bool = True,
) -> StepReport:
    migration = get_migration(options.migration)
    periods = PeriodLookup(guarded_store(store, step_config))
    processor = migration_processor(migration, publications.open(workers=options.workers), periods)
    return run_step(context, store, scan, processor, migration_job_key(migration.name), step_config,
                    workers=options.workers, dry_run=options.dry_run, tags_batch_status=tags_batch_status)


def migration_metadata(report: StepReport, options: MigrationOptions) -> dict:
    metadata = {"migration": options.migration, "dry_run": options.dry_run}
    if options.dry_run:
        metadata["would_change"] = dg.MetadataValue.int(report.counters.changed)
        metadata["sample_diffs"] = dg.MetadataValue.json(report.sample_diffs)
    return metadata


@dg.op(
    description=(
        "Apply a named migration to every candidate of the year: read, on-read migrations, the migration "
        "(with the S3 document when it needs one), written back under the lock even when nothing changed."
    ),
)
def migrate_candidates(
    context: dg.OpExecutionContext,
    config: MigrateCandidatesConfig,
    nvi_store: NviStoreResource,
    publications: PublicationSourceResource,
):
    year = context.partition_key
    with batch_status_on_failure(context):
        store = open_store(nvi_store, config)
        refuse_items_outside_year(guarded_store(store, config), year, config.item_ids)
        report = run_migration(context, store, scan_for(year, config.item_ids), config, config, publications)
        metadata = {**report_metadata(report, item_count=year_count(report, store, year, config)),
                    **migration_metadata(report, config)}
        fail_if_stopped(report, metadata)
    if not config.dry_run:
        yield dg.AssetMaterialization(asset_key="candidates", partition=year, metadata=metadata)
    yield dg.Output(report.counters.as_dict(), metadata=metadata)


@dg.job(partitions_def=reporting_year_partitions, tags={JOB_TYPE_TAG: str(JobType.MIGRATE_CANDIDATES)},
        description=f"{JobType.MIGRATE_CANDIDATES} for one reporting year.")
def migrate_candidates_job():
    migrate_candidates()


defs = dg.Definitions(jobs=[migrate_candidates_job])

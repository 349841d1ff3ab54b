"""Alerting that an operator can trust at 3 a.m.: one alert per problem, only after N failures in a
row, never lost while the webhook is down, and never a crash of the sensor that sends it.

A problem is a (check, partition) whose last N evaluations failed, or a (job, partition) whose last
N runs failed. Failed non-blocking checks do not fail runs, so run-failure sensors would miss them:
this reads check evaluations itself. The sensor cursor remembers what was sent and what waits.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

import dagster as dg

from nvi_batch.lib.tags import BATCH_STATUS_TAG, PARTITION_TAG

RECENT_FAILED_RUNS = 100
CHECK_HISTORY = 50


@dataclass
class AlertBook:
    sent: dict[str, str] = field(default_factory=dict)  # problem key → marker of the streak alerted
    pending: dict[str, dict] = field(default_factory=dict)  # problem key → alert body waiting to go out

    @classmethod
    def from_cursor(cls, cursor: str | None) -> AlertBook:
        if not cursor:
            return cls()
        saved = json.loads(cursor)
        return cls(sent=saved.get("sent", {}), pending=saved.get("pending", {}))

    def to_cursor(self) -> str:
        return json.dumps({"sent": self.sent, "pending": self.pending}, sort_keys=True)

    def mark_sent(self, key: str) -> None:
        self.sent[key] = self.pending.pop(key)["marker"]

    def _problem(self, key: str, marker: str, alert: dict) -> None:
        """A problem alerts once per streak: the marker is where the streak of failures began."""
        if self.sent.get(key) != marker and key not in self.pending:
            self.pending[key] = {**alert, "marker": marker}

    def _healthy(self, key: str) -> None:
        self.sent.pop(key, None)
        self.pending.pop(key, None)

    def observe(self, instance: dg.DagsterInstance, threshold: int, check_keys=None) -> None:
        self._observe_checks(instance, threshold, check_keys)
        self._observe_runs(instance, threshold)

    def _observe_checks(self, instance, threshold: int, check_keys) -> None:
        for check_key in check_keys or []:
            history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=CHECK_HISTORY)
            by_partition = defaultdict(list)
            for record in history:  # newest first; a planned check that has not been evaluated has none
                evaluation = record.event.asset_check_evaluation if record.event else None
                if evaluation is not None:
                    by_partition[record.partition].append((record, evaluation))
            for partition, evaluated in by_partition.items():
                key = f"check:{check_key.asset_key.to_user_string()}:{check_key.name}:{partition or '-'}"
                streak = _leading(evaluated, lambda pair: not pair[1].passed)
                if not streak:
                    self._healthy(key)
                if len(streak) < threshold:
                    continue
                (latest, evaluation), (first, _) = streak[0], streak[-1]
                self._problem(key, str(first.id), {
                    "kind": "asset_check_failed",
                    "asset": check_key.asset_key.to_user_string(),
                    "check": check_key.name,
                    "partition": partition,
                    "consecutive_failures": len(streak),
                    "description": evaluation.description,
                    "run_id": latest.run_id,
                })

    def _observe_runs(self, instance, threshold: int) -> None:
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]),
                                   limit=RECENT_FAILED_RUNS)
        seen = set()
        for run in failed:
            partition = run.tags.get(PARTITION_TAG)
            if (run.job_name, partition) in seen:
                continue
            seen.add((run.job_name, partition))
            tags = {PARTITION_TAG: partition} if partition else {}
            recent = instance.get_runs(filters=dg.RunsFilter(job_name=run.job_name, tags=tags), limit=threshold * 4)
            finished = [r for r in recent if r.is_finished]
            streak = _leading(finished, lambda r: r.status == dg.DagsterRunStatus.FAILURE)
            key = f"run:{run.job_name}:{partition or '-'}"
            if not streak:
                self._healthy(key)
            if len(streak) < threshold:
                continue
            self._problem(key, streak[-1].run_id, {
                "kind": "run_failed",
                "job": run.job_name,
                "partition": partition,
                "consecutive_failures": len(streak),
                "run_id": streak[0].run_id,
                "batch_status": streak[0].tags.get(BATCH_STATUS_TAG),
            })


def _leading(items, predicate) -> list:
    streak = []
    for item in items:
        if not predicate(item):
            break
        streak.append(item)
    return streak


def post_alert(url: str, alert: dict, timeout_seconds: float) -> bool:
    """POST the alert as JSON; any failure is reported as False, never raised."""
    body = json.dumps({key: value for key, value in alert.items() if key != "marker"}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310 - operator URL
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False

"""Runs that died without saying so: find them, mark them failed, free what they hold.

A run killed hard (SIGKILL, an evicted pod, a lost machine) stays ``STARTED`` forever:
the default run launcher cannot check a run worker's health, and CLI runs have no run
monitoring at all. Under ``concurrency.pools.granularity: run`` such a run still counts
against the ``scrape`` pool, so every later scraping run would wait in the queue behind
it. A live scraping step logs progress every few seconds (``defs.execution``), so a
STARTED run that has written no event for :data:`DEAD_AFTER` is dead: the
:func:`dead_run_sensor` (and ``podpod-scraping runs fail-dead``) marks it failed and frees
any pool slots it holds, and the queue moves on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

#: Silence after which a STARTED run is taken for dead (progress lines come every 5 s).
DEAD_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class DeadRun:
    """A STARTED run that logged nothing for longer than the threshold."""

    run_id: str
    job_name: str
    silent_for_s: float


def dead_runs(instance: dg.DagsterInstance, *, silent_for: timedelta) -> list[DeadRun]:
    """STARTED runs whose latest event is older than ``silent_for``."""
    now = time.time()
    found: list[DeadRun] = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    for record in records:
        run = record.dagster_run
        latest = instance.get_records_for_run(run.run_id, limit=1, ascending=False).records
        last_seen = latest[0].timestamp if latest else record.create_timestamp.timestamp()
        silence = now - last_seen
        if silence > silent_for.total_seconds():
            found.append(DeadRun(run.run_id, run.job_name, silence))
    return found


def fail_dead_runs(
    instance: dg.DagsterInstance, *, silent_for: timedelta = DEAD_AFTER
) -> list[DeadRun]:
    """Mark every dead run failed and free the pool slots it holds; return them."""
    dead = dead_runs(instance, silent_for=silent_for)
    for found in dead:
        run = instance.get_run_by_id(found.run_id)
        if run is None or run.status is not dg.DagsterRunStatus.STARTED:
            continue  # it ended meanwhile
        instance.report_run_failed(
            run,
            message=(
                f"no event for {found.silent_for_s / 60:.0f} min while STARTED: the run's "
                "process is gone (killed or lost); marked failed by podpod_scraping's "
                "dead-run recovery"
            ),
        )
        instance.event_log_storage.free_concurrency_slots_for_run(found.run_id)
    return dead


def dead_after(minutes: str | None) -> timedelta:
    """``PODPOD_DEAD_RUN_AFTER_MINUTES`` as a duration (unset: :data:`DEAD_AFTER`)."""
    if not minutes:
        return DEAD_AFTER
    try:
        value = float(minutes)
    except ValueError:
        value = float("nan")
    if not 0 < value < 7 * 24 * 60:  # also refuses NaN
        raise ValueError(
            f"PODPOD_DEAD_RUN_AFTER_MINUTES must be a number of minutes above 0 (default 10), "
            f"got {minutes!r}"
        )
    return timedelta(minutes=value)


def build_dead_run_sensor(silent_for: timedelta = DEAD_AFTER) -> dg.SensorDefinition:
    """The sensor that fails runs silent for ``silent_for`` (``PODPOD_DEAD_RUN_AFTER_MINUTES``)."""
    minutes = silent_for.total_seconds() / 60

    @dg.sensor(
        name="dead_run_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Marks STARTED runs that logged nothing for {minutes:g} min as failed and frees "
            "their pool slots, so a killed run never blocks later scraping runs."
        ),
    )
    def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        dead = fail_dead_runs(context.instance, silent_for=silent_for)
        for found in dead:
            context.log.warning(
                f"run {found.run_id} ({found.job_name}) silent for {found.silent_for_s:.0f}s: "
                "marked failed, pool slots freed"
            )
        return dg.SkipReason(f"marked {len(dead)} dead run(s) failed" if dead else "no dead runs")

    return dead_run_sensor

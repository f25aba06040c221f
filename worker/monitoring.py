"""What ops teams watch: queue depths, workers, failed jobs, needs by status, latencies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from rq import Queue, Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from service import clock, jobs
from service.deps import Deps
from service.models import Family, NeedStatus
from service.offers import LATENCY_BUCKETS

HEARTBEAT_GRACE = 90
"""A worker whose last heartbeat is older than this (seconds) is counted as gone."""


def live_worker_count(deps: Deps) -> int:
    """Workers that sent a heartbeat recently; a killed worker's record lingers until its TTL."""
    now = deps.clock.now()
    count = 0
    for w in Worker.all(connection=deps.redis):
        beat = w.last_heartbeat
        if beat is not None and (now - beat.replace(tzinfo=now.tzinfo)).total_seconds() <= HEARTBEAT_GRACE:
            count += 1
    return count


def queue_stats(deps: Deps) -> dict[str, dict[str, int]]:
    """Per queue: waiting, running, scheduled and failed jobs."""
    stats = {}
    for name in jobs.ALL_QUEUES:
        queue = Queue(name, connection=deps.redis)
        stats[name] = {
            "queued": queue.count,
            "started": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]  # rq
            "failed": FailedJobRegistry(queue=queue).count,
        }
    return stats


def status_report(deps: Deps) -> dict[str, Any]:
    """Everything `aidline ops status` prints."""
    workers = Worker.all(connection=deps.redis)
    by_status = deps.store.needs.count_by_status()
    return {
        "queues": queue_stats(deps),
        "workers": [{"name": w.name, "state": str(w.get_state()), "queues": w.queue_names()} for w in workers],
        "needs": by_status,
        "waiting": {
            "match": deps.store.backlog.waiting_count(),
            "announcements": deps.store.backlog.outbox_count(),
        },
        "escalated": deps.store.needs.ids_with_status(NeedStatus.ESCALATED, limit=50),
        "overdue": deps.store.needs.overdue_ids(now_epoch=clock.epoch(deps.clock.now()))[:50],
    }


def requeue_failed(deps: Deps) -> int:
    """Put every failed job back on its queue; returns how many."""
    count = 0
    for name in jobs.ALL_QUEUES:
        registry = FailedJobRegistry(queue=Queue(name, connection=deps.redis))
        for job_id in registry.get_job_ids():
            registry.requeue(job_id)
            count += 1
    return count


class AidlineCollector(Collector):
    """Reads the shared numbers from Redis at scrape time, so every API process reports the same."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def collect(self) -> Iterator[Any]:
        store = self.deps.store
        depth = GaugeMetricFamily("aidline_queue_depth", "Jobs waiting in each RQ queue", labels=["queue"])
        failed = GaugeMetricFamily("aidline_failed_jobs", "Jobs in each queue's failed registry", labels=["queue"])
        for name, numbers in queue_stats(self.deps).items():
            depth.add_metric([name], numbers["queued"])
            failed.add_metric([name], numbers["failed"])
        yield depth
        yield failed
        workers = GaugeMetricFamily("aidline_workers", "RQ workers alive")
        workers.add_metric([], live_worker_count(self.deps))
        yield workers
        waiting = GaugeMetricFamily(
            "aidline_backlog", "Work waiting for the drains: needs to match, announcements to plan", labels=["backlog"]
        )
        waiting.add_metric(["match"], store.backlog.waiting_count())
        waiting.add_metric(["notify"], store.backlog.outbox_count())
        yield waiting
        needs = GaugeMetricFamily("aidline_needs", "Needs by status", labels=["status"])
        for status, count in store.needs.count_by_status().items():
            needs.add_metric([status], count)
        yield needs
        overdue = GaugeMetricFamily("aidline_needs_overdue", "Needs past their committed deadline")
        overdue.add_metric([], store.needs.overdue_count(now_epoch=clock.epoch(self.deps.clock.now())))
        yield overdue
        offers = CounterMetricFamily(
            "aidline_offers_ended",
            "Offers declined, expired or withdrawn (taken: another volunteer accepted first; preempted: given to a "
            "more urgent need)",
            labels=["outcome"],
        )
        for outcome in ("declined", "expired", "withdrawn", "taken", "preempted"):
            offers.add_metric([outcome], store.stats.get(f"offers_{outcome}"))
        yield offers
        for name, help_text in (
            ("parallel_offers", "Offers made to several volunteers at once (critical needs, needs after an expiry)"),
            ("joint_batches", "Batches of waiting needs assigned together by the solver"),
            ("joint_needs", "Needs assigned as part of a joint assignment"),
            (
                "offers_moved",
                "Pending offers of ordinary needs moved to another volunteer, so a need could have its nearest",
            ),
            ("urgent_wakeups", "Escalated urgent needs woken because a volunteer they wait for came free"),
        ):
            counter = CounterMetricFamily(f"aidline_{name}", help_text)
            counter.add_metric([], store.stats.get(name))
            yield counter
        escalations = CounterMetricFamily("aidline_escalations", "Needs escalated to dispatchers")
        escalations.add_metric([], store.stats.get("escalations"))
        yield escalations
        steps = CounterMetricFamily(
            "aidline_escalation_steps",
            "Steps of the escalation ladder: a tier told (notified) or passed over (skipped: nobody on call, ...)",
            labels=["tier", "outcome"],
        )
        for label, count in sorted(store.stats.counts("escalation_steps").items()):
            tier, _, outcome = label.rpartition("|")
            steps.add_metric([tier, outcome], count)
        yield steps
        acks = CounterMetricFamily(
            "aidline_escalation_acks", "Escalations acknowledged, by the last tier told", labels=["tier"]
        )
        for tier, count in sorted(store.stats.counts("escalation_acks").items()):
            acks.add_metric([tier], count)
        yield acks
        opened = CounterMetricFamily(
            "aidline_incidents_opened",
            "Incidents opened, by family and origin (automatic: formed by arrival; declared: by a dispatcher)",
            labels=["family", "origin"],
        )
        still_open = GaugeMetricFamily("aidline_incidents_open", "Open incidents, by family", labels=["family"])
        for family in Family:
            for origin in ("automatic", "declared"):
                opened.add_metric([family.value, origin], store.stats.get(f"incidents_opened:{family.value}:{origin}"))
            still_open.add_metric([family.value], store.incidents.open_count(family))
        yield opened
        yield still_open
        changed = CounterMetricFamily(
            "aidline_visits",
            "Households' visits planned, made due (their need recorded), done, overdue and cancelled",
            labels=["event"],
        )
        for event in ("planned", "due", "done", "overdue", "cancelled"):
            changed.add_metric([event], store.stats.get(f"visits_{event}"))
        yield changed
        visits_now = GaugeMetricFamily("aidline_visits_by_status", "Households' visits by status", labels=["status"])
        for status, count in store.visits.count_by_status().items():
            visits_now.add_metric([status], count)
        yield visits_now
        failures = CounterMetricFamily("aidline_notification_failures", "Failed notification attempts")
        failures.add_metric([], store.stats.get("notification_failures"))
        yield failures
        skipped = CounterMetricFamily(
            "aidline_notifications_skipped", "Notifications left unsent because they became pointless"
        )
        skipped.add_metric([], store.stats.get("notifications_skipped"))
        yield skipped
        for name, help_text in (
            ("intake_to_first_offer", "Seconds from intake to the first offer"),
            ("intake_to_acceptance", "Seconds from intake to the first acceptance"),
        ):
            yield histogram(f"aidline_{name}_seconds", help_text, store.stats.histogram(name))


def histogram(metric: str, help_text: str, raw: dict[str, float]) -> HistogramMetricFamily:
    running = 0.0
    buckets = []
    for bound in LATENCY_BUCKETS:
        running += raw.get(f"{bound:g}", 0.0)
        buckets.append((f"{bound:g}", running))
    running += raw.get("+Inf", 0.0)
    buckets.append(("+Inf", running))
    family = HistogramMetricFamily(metric, help_text)
    family.add_metric([], buckets=buckets, sum_value=raw.get("_sum", 0.0))
    return family

"""/metrics: Prometheus figures for the district's operators (docs/operations.md "Metrics").

Not public. With ``YUNBANG_METRICS_TOKEN`` the app serves ``/metrics`` to a request that brings
that token (``Authorization: Bearer …``; 401 ``metrics_token_invalid`` otherwise); without it the
app has no such path (404, like any unknown one). ``YUNBANG_METRICS_LISTEN`` serves it on a
listener of its own as well (an operators' address; the token is asked there too when set).
nginx never passes ``/metrics`` on.

Each app has its own registry (tests run many apps in one process). Three kinds of figures:

- counted where they happen: HTTP requests (this module's middleware: the route's template,
  never the path with its ids), socket events (the namespace's dispatch), upload processing
  (server/uploading.py), and tickets and alerts (from the domain events the sink publishes —
  per node: sum them over nodes);
- read from the relay at scrape time (`RelayCollector`): its per-packet path only adds to plain
  ints (signaling/relay/traffic.py);
- read from the database at scrape time (`QueueCollector`): the wall's queue figures, in one
  read transaction of a fixed few grouped queries. Every node reports the same queues: take
  ``max`` over nodes.

No personal data: labels are route templates, event names, error codes, outcomes, ids and
codes of centres and departments.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.api.base import Handler, error_response
from server.domain import dashboard, queue
from server.events import Event
from server.keys import METRICS
from server.runtime import Domain
from signaling.relay.relay import Relay
from signaling.relay.traffic import DROP_REASONS

log = logging.getLogger("yunbang.metrics")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNTIMED = ("/socket.io/",)  # long polls and websockets: socket events are counted instead
UPLOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class Metrics:
    """The app's metrics: its registry, the counters the app feeds, the collectors read at scrape."""

    def __init__(self, domain: Domain, relay: Relay) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http = Histogram("yunbang_http_request_duration_seconds",
                              "HTTP requests by route template, method and status", ["route", "method", "status"],
                              registry=r)
        self.socket_events = Counter("yunbang_socket_events", "socket.io events by name and answer (ok or an error code)",
                                     ["event", "result"], registry=r)
        self.uploads = Histogram("yunbang_upload_processing_seconds",
                                 "Processing and storing a complete upload, by outcome (stored, duplicate, refused, failed)",
                                 ["outcome"], buckets=UPLOAD_BUCKETS, registry=r)
        self.tickets_taken = Counter("yunbang_tickets_taken", "Tickets taken, by department", ["department_id"],
                                     registry=r)
        self.tickets_ended = Counter("yunbang_tickets_ended",
                                     "Tickets that ended, by outcome (a completed case's result, no_show, cancelled)",
                                     ["department_id", "outcome"], registry=r)
        self.alerts = Counter("yunbang_alerts_raised", "Alerts raised for supervisors, by kind and level",
                              ["kind", "level"], registry=r)
        self.errors = Counter("yunbang_internal_errors", "Unforeseen errors answered internal_error (HTTP 500, socket ack)",
                              ["where"], registry=r)
        for where in ("http", "socket"):
            self.errors.labels(where)
        self.queues = QueueCollector(domain)
        r.register(self.queues)
        r.register(RelayCollector(relay))

    def socket_event(self, event: str, result: str) -> None:
        self.socket_events.labels(event, result).inc()
        if result == "internal_error":
            self.errors.labels("socket").inc()

    def upload_processed(self, outcome: str, seconds: float) -> None:
        self.uploads.labels(outcome).observe(seconds)

    async def on_event(self, event: Event) -> None:
        """Tickets and alerts, from the domain's committed events."""
        if event.name == "ticket.created":
            self.tickets_taken.labels(str(event.payload["department_id"])).inc()
        elif (ended := queue.outcome(event.name, event.payload)) is not None:
            self.tickets_ended.labels(str(event.payload["department_id"]), ended).inc()
        elif event.name == "alert.raised":
            self.alerts.labels(str(event.payload["kind"]), str(event.payload["level"])).inc()

    async def exposition(self) -> bytes:
        await self.queues.refresh()
        return bytes(generate_latest(self.registry))


class QueueCollector(Collector):
    """Queue length and longest wait per queue (centre × department), read at each scrape."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.figures: list[dict[str, Any]] = []
        self.database_ok = True

    async def refresh(self) -> None:
        try:
            async with self.domain.unit(write=False) as uow:
                self.figures = await dashboard.queue_gauges(uow)
            self.database_ok = True
        except Exception:  # the relay's and the counters' figures are still worth a scrape
            log.exception("queue figures for /metrics failed")
            self.figures, self.database_ok = [], False

    def collect(self) -> Iterator[Metric]:
        labels = ["centre_id", "department_id", "department"]
        waiting = GaugeMetricFamily("yunbang_queue_waiting", "Tickets waiting in the queue", labels=labels)
        serving = GaugeMetricFamily("yunbang_queue_serving", "Tickets called or in service", labels=labels)
        longest = GaugeMetricFamily("yunbang_queue_longest_wait_seconds", "How long the longest waiting ticket has waited",
                                    labels=labels)
        windows = GaugeMetricFamily("yunbang_queue_windows_open", "Active cloud windows serving the queue", labels=labels)
        level = GaugeMetricFamily("yunbang_queue_warning_level", "The queue's warning level: 0 green, 1 yellow, 2 red",
                                  labels=labels)
        for q in self.figures:
            values = [str(q["centre_id"]), str(q["department_id"]), str(q["department_code"])]
            waiting.add_metric(values, q["waiting"])
            serving.add_metric(values, q["serving"])
            longest.add_metric(values, q["longest_wait_s"])
            windows.add_metric(values, q["windows_open"])
            level.add_metric(values, ("green", "yellow", "red").index(q["warning_level"]))
        yield from (waiting, serving, longest, windows, level)
        yield GaugeMetricFamily("yunbang_queue_figures_ok", "1 when the last scrape read the queues from the database",
                                value=int(self.database_ok))


class RelayCollector(Collector):
    """Calls and the relay's traffic, read from the relay at scrape time (this node's)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def collect(self) -> Iterator[Metric]:
        counts = self.relay.counts()
        yield GaugeMetricFamily("yunbang_calls", "Calls open on this node (relay rooms, first join to case end)",
                                value=counts["rooms"])
        yield GaugeMetricFamily("yunbang_call_participants", "Participants in calls on this node",
                                value=counts["participants"])
        yield GaugeMetricFamily("yunbang_relay_peer_connections", "The relay's peer connections",
                                value=counts["peer_connections"])
        t = self.relay.traffic()
        for name, doc, value in (
            ("yunbang_relay_received_packets", "RTP packets received from publishers", t.received_packets),
            ("yunbang_relay_received_bytes", "RTP payload bytes received from publishers", t.received_bytes),
            ("yunbang_relay_forwarded_packets", "RTP packets forwarded to subscribers", t.forwarded_packets),
            ("yunbang_relay_forwarded_bytes", "RTP payload bytes forwarded to subscribers", t.forwarded_bytes),
            ("yunbang_relay_keyframe_waits", "Times a stream stopped until its publisher's next keyframe",
             t.keyframe_waits),
            ("yunbang_relay_plis_sent", "Keyframe requests (PLI) sent to publishers", t.plis_sent),
            ("yunbang_relay_plis_received", "Keyframe requests (PLI/FIR) received from subscribers", t.plis_received),
            ("yunbang_relay_nacks_sent", "NACKs sent to publishers", t.nacks_sent),
            ("yunbang_relay_nacks_received", "Packets subscribers asked for again (NACK)", t.nacks_received),
            ("yunbang_relay_retransmitted_packets", "Packets sent again on a subscriber's NACK", t.retransmitted),
            ("yunbang_relay_retransmits_refused", "NACKed packets not sent again (within a round trip, or over budget)",
             t.retransmit_refused),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        gaps = CounterMetricFamily("yunbang_relay_gaps", "Gaps in publishers' streams, by outcome", labels=["outcome"])
        gaps.add_metric(["recovered"], t.gaps_recovered)
        gaps.add_metric(["skipped"], t.gaps_skipped)
        yield gaps
        dropped = CounterMetricFamily("yunbang_relay_dropped_packets", "Packets received and not forwarded, by reason",
                                      labels=["reason"])
        for reason in DROP_REASONS:
            dropped.add_metric([reason], t.dropped[reason])
        yield dropped


def route_label(request: web.Request) -> str:
    """The route's template (``/api/tickets/{ticket_id}``), never the path itself."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def http_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Times each request into the app's metrics (``METRICS``, there once the app has started)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's number for it)
        raise
    finally:
        metrics = request.app[METRICS]
        route = route_label(request)
        if not route.startswith(UNTIMED):
            method = request.method if request.method in METHODS else "other"
            metrics.http.labels(route, method, str(status)).observe(time.perf_counter() - started)
        if status == 500:
            metrics.errors.labels("http").inc()


def scrape_handler(token: str) -> Handler:
    """/metrics: the text exposition of the app's metrics; with a token, only for a request that
    brings it."""

    async def scrape(request: web.Request) -> web.StreamResponse:
        if token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(errors="replace"), f"Bearer {token}".encode()):
                response = error_response(401, "metrics_token_invalid", "需要正确的监控令牌")
                response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
                return response
        return web.Response(body=await request.app[METRICS].exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})

    return scrape


async def listener(metrics: Metrics, token: str, host: str, port: int) -> web.AppRunner:
    """/metrics alone on an address of its own (``YUNBANG_METRICS_LISTEN``); the caller cleans up."""
    app = web.Application()
    app[METRICS] = metrics
    app.router.add_get("/metrics", scrape_handler(token))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner

"""What the app reports about itself: per-route request counts and latency histograms, and
the served model and index versions, as Ray metrics (scraped from Ray's Prometheus endpoint
beside Serve's own), and one structured log line per request, with its request id."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from ray.serve import metrics

from weft.metrics import tag_keys

# Serve's own logger: its lines go to the replica's log file (`logs/serve/replica_*.log`),
# formatted and tagged (deployment, replica, request id) as Serve's own.
log = logging.getLogger("ray.serve")
# Latency buckets in milliseconds: from a cached search to a 50-step generation.
BOUNDARIES_MS: list[float] = [1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000]


@dataclass(frozen=True)
class Telemetry:
    requests: metrics.Counter
    latency: metrics.Histogram
    versions: metrics.Gauge


@cache
def telemetry() -> Telemetry:
    """The app's metrics, made once per replica process."""
    return Telemetry(
        requests=metrics.Counter(
            "weft_http_requests",
            description="Requests answered, by route and status code.",
            tag_keys=tag_keys("route", "method", "status"),
        ),
        latency=metrics.Histogram(
            "weft_http_request_latency_ms",
            description="Time to answer a request, by route.",
            boundaries=BOUNDARIES_MS,
            tag_keys=tag_keys("route", "method"),
        ),
        versions=metrics.Gauge(
            "weft_served_version",
            description="The registered version served in each role (the index: its CLIP's).",
            tag_keys=tag_keys("role", "model"),
        ),
    )


def record(request_id: str, method: str, route: str, status: int, ms: float) -> None:
    t = telemetry()
    t.requests.inc(tags={"route": route, "method": method, "status": str(status)})
    t.latency.observe(ms, tags={"route": route, "method": method})
    log.info(
        "request id=%s method=%s route=%s status=%d ms=%.1f", request_id, method, route, status, ms
    )


def served(role: str, model: str, version: str) -> None:
    telemetry().versions.set(float(version), tags={"role": role, "model": model})

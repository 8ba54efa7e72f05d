"""The service's Prometheus metrics, in a registry of its own (two services in one process,
as in the tests, do not share counts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from .models import ServedModel
    from .places import Places

#: Request latency buckets, seconds: a beat scores in well under a millisecond, a large
#: batch in a second or more.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)


class ServiceMetrics:
    """Requests (by route template, method and status), their latency, the places taken
    and the requests waiting for one (read from ``places``), beats scored and anomalies
    flagged (by model), and one ``anomaly_model_info`` series per model."""

    def __init__(self, models: dict[str, "ServedModel"], places: "Places"):
        self.registry = CollectorRegistry()
        self.requests = Counter("anomaly_requests", "HTTP requests answered",
                                ("route", "method", "status"), registry=self.registry)
        self.latency = Histogram("anomaly_request_duration_seconds",
                                 "Time to answer a request", ("route",),
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.beats = Counter("anomaly_beats_scored", "Beats scored", ("model",),
                             registry=self.registry)
        self.anomalies = Counter("anomaly_anomalies", "Beats flagged as anomalies",
                                 ("model",), registry=self.registry)
        self.streams = Gauge("anomaly_live_streams", "Live ECG streams open",
                             registry=self.registry)
        Gauge("anomaly_request_places_taken", "Places to score requests in held (from "
              "the body's arrival to the scoring's end)",
              registry=self.registry).set_function(lambda: places.busy)
        Gauge("anomaly_requests_waiting", "Requests waiting for a place to be scored in",
              registry=self.registry).set_function(lambda: places.waiting)
        info = Gauge("anomaly_model_info", "A served model (value 1), with its threshold "
                     "and the SHA-256 of its model file", ("model", "threshold", "sha256"),
                     registry=self.registry)
        for name, model in models.items():
            info.labels(name, f"{model.detector.threshold_:.6g}",
                        model.detector.model_sha256_).set(1)
            self.beats.labels(name)
            self.anomalies.labels(name)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def scored(self, model: str, beats: int, anomalies: int) -> None:
        self.beats.labels(model).inc(beats)
        self.anomalies.labels(model).inc(anomalies)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus's text format, and its media type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

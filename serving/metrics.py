"""The server's Prometheus metrics: requests counted and timed per model, signature, API, code.

Both APIs count into one `ServerMetrics`: the gRPC handlers
(`serving.grpc_api`) and the REST handler (`serving.rest`), which also serves
the exposition at /monitoring/prometheus/metrics, TF Serving's path. The
`status` label is the name of the code a request was answered with
(`serving.status`). Under `--num_processes` > 1 (`serving.supervisor`) every
worker writes its values to files and any worker's exposition adds them up.
"""

from __future__ import annotations

import os

import grpc
import prometheus_client
from prometheus_client import multiprocess


class ServerMetrics:
    """Prometheus metrics of the requests, per model, signature, API and status code.

    `tensorflow_serving_request_count` (counter) and
    `tensorflow_serving_request_latency_seconds` (histogram), in a registry of
    their own; the REST server exposes them at /monitoring/prometheus/metrics,
    TF Serving's path.
    """

    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry()
        # Under --num_processes > 1 every worker writes its values to files in
        # PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), and
        # any worker's exposition adds up all of them.
        self._exposed = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._exposed = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed)
        labels = ("model_name", "signature_name", "api", "status")
        self.requests = prometheus_client.Counter(
            "tensorflow_serving_request_count", "Requests.", labels, registry=self.registry
        )
        self.latency = prometheus_client.Histogram(
            "tensorflow_serving_request_latency_seconds",
            "Request latency.",
            ("model_name", "signature_name", "api"),
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )

    def observe(self, model, signature, api, status: grpc.StatusCode, seconds: float) -> None:
        """Counts one request and its latency.

        Args:
          model: The model name the request gave.
          signature: The signature name it gave ("" if it was not read).
          api: "grpc" or "rest".
          status: The code it was answered with (a `ServableError`'s, see
            `serving.status`); its name is the `status` label.
          seconds: How long it took.
        """
        # Names a client made up (unknown model or signature, or names no
        # handler checked) share one label value, so requests cannot grow the
        # number of series without bound.
        if status in _UNCHECKED_NAMES:
            model, signature = "<unknown>", "<unknown>"
        self.requests.labels(model, signature, api, status.name).inc()
        self.latency.labels(model, signature, api).observe(seconds)

    def exposition(self) -> bytes:
        """Returns the metrics in Prometheus' text format."""
        return prometheus_client.generate_latest(self._exposed)


_UNCHECKED_NAMES = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
)

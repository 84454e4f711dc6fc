"""Server-side batching: requests of one signature that arrive while the model runs, in one call.

Each loaded version (`serving.versions.LoadedVersion`) has a `Batcher` per
batchable signature (`batchable`: every input and output of shape [-1]) when
`--enable_batching` is on (the default); `serving.requests.run_signature`
sends it the requests whose inputs are all 1-D of one length. Batches form
only under load, up to `--max_batch_size` rows, with no thread of their own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: serving.versions imports this module
    from serving.versions import LoadedVersion


def batchable(signature) -> bool:
    """Whether requests of a signature can be concatenated: every input and output is [-1]."""
    tensors = list(signature.inputs.values()) + list(signature.outputs.values())
    return all([d.size for d in t.tensor_shape.dim] == [-1] for t in tensors)


class _Job:
    __slots__ = ("inputs", "size", "outputs", "error", "event")

    def __init__(self, inputs, size):
        self.inputs = inputs
        self.size = size
        self.outputs = None
        self.error = None
        self.event = threading.Event()


class Batcher:
    """Server-side batching of one signature by flat combining.

    A request that finds the model idle runs at once, with no added latency.
    Requests that arrive while it runs queue up; when it is done, the oldest
    of them runs everything queued (up to `max_items` input elements) as one
    call, concatenated along the batch axis, and hands each request its slice.
    So batches form only under load, and no thread is added. Only requests
    whose inputs all have the same length are batched (as in TF Serving);
    a batch that fails is rerun request by request, so an error reaches only
    the request that caused it.

    Args:
      version: The LoadedVersion.
      signature: The signature's name.
      max_items: The most elements per input of one batched call.
    """

    def __init__(self, version: LoadedVersion, signature: str, max_items: int):
        self.version = version
        self.signature = signature
        self.max_items = max_items
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._busy = False
        self.closed = False

    def close(self) -> None:
        """Takes no more requests (its version is closing: none is queued or running)."""
        with self._lock:
            self.closed = True

    def run(self, inputs: dict, size: int) -> dict:
        """Runs one request of `size` rows; returns all its outputs (see LoadedVersion.run).

        Raises:
          RuntimeError: If the batcher is closed.
        """
        job = _Job(inputs, size)
        with self._lock:
            if self.closed:
                raise RuntimeError(f"the batcher of version {self.version.version} is closed")
            self._queue.append(job)
            wait, self._busy = self._busy, True
        if wait:
            job.event.wait()  # our result, or our turn to run the queue
        if job.outputs is None and job.error is None:
            self._run_queue()
        if job.error is not None:
            raise job.error
        return job.outputs

    def _run_queue(self) -> None:
        with self._lock:
            batch, items = [], 0
            while self._queue and (not batch or items + self._queue[0].size <= self.max_items):
                job = self._queue.pop(0)
                batch.append(job)
                items += job.size
        try:
            if len(batch) == 1 or not self._run_together(batch, items):
                for job in batch:
                    self._run_alone(job)
        except BaseException as e:  # noqa: BLE001 — no request may wait forever
            for job in batch:
                if job.outputs is None and job.error is None:
                    job.error = e
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._busy = successor is not None
            for job in batch:
                job.event.set()
            if successor is not None:
                successor.event.set()  # it runs the queue next

    def _run_together(self, batch: list[_Job], items: int) -> bool:
        """Runs a batch as one call; False (nothing set) if it must run request by request."""
        try:
            inputs = {
                name: np.concatenate([job.inputs[name] for job in batch])
                for name in batch[0].inputs
            }
            outputs = self.version.run(self.signature, inputs)
        except Exception:  # noqa: BLE001 — rerun alone: errors reach their own request
            return False
        if any(value.shape[:1] != (items,) for value in outputs.values()):
            return False  # outputs not one row per input row: slices would mix requests
        start = 0
        for job in batch:
            end = start + job.size
            job.outputs = {name: value[start:end] for name, value in outputs.items()}
            start = end
        return True

    def _run_alone(self, job: _Job) -> None:
        try:
            job.outputs = self.version.run(self.signature, job.inputs)
        except Exception as e:  # noqa: BLE001 — handed to the request's own thread
            job.error = e

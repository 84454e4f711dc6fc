"""Progress lines for long-running DoFns."""

from __future__ import annotations

import logging
import time


class Progress:
    """Logs "<what>: N done (r/s)" every `every` elements.

    Each worker process logs its own count; on the local runners that is the
    whole job's progress.

    Args:
      what: What is being counted, e.g. "samples".
      every: Elements between two log lines.
    """

    def __init__(self, what: str, every: int = 100_000):
        self.what = what
        self.every = every
        self.count = 0
        self.start = time.monotonic()

    def step(self, n: int = 1) -> None:
        """Counts `n` more elements and logs when a multiple of `every` is crossed."""
        before = self.count
        self.count += n
        if self.count // self.every > before // self.every:
            elapsed = max(time.monotonic() - self.start, 1e-9)
            logging.info(
                "%s: %d done (%.0f/s in this worker)", self.what, self.count, self.count / elapsed
            )

"""The live state of a running daemon that the event log lacks: its loop's pulse and running jobs.

The scheduler loop writes it and the monitoring server's threads read it.
Everything else that /metrics and /health report comes from the projections.
"""

import threading
import time
from dataclasses import dataclass, field


@dataclass
class DaemonState:
    """The live state of one daemon process, shared between its loop and its HTTP threads."""

    # How often the loop wakes, in seconds; /health calls the loop stalled
    # when it has not beaten for several of these.
    loop_interval: float = 1.0
    started_monotonic: float = field(default_factory=time.monotonic)
    last_beat_monotonic: float = field(default_factory=time.monotonic)
    # Schedules that could not be read, each with its reason, e.g. "backup:nightly: invalid cron ...".
    schedule_errors: list[str] = field(default_factory=list)
    # Names of the jobs running now, e.g. {"backup:nightly", "sync:queue"}.
    running_jobs: set[str] = field(default_factory=set)
    stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def beat(self) -> None:
        with self._lock:
            self.last_beat_monotonic = time.monotonic()

    def seconds_since_beat(self) -> float:
        with self._lock:
            return time.monotonic() - self.last_beat_monotonic

    def job_started(self, name: str) -> None:
        with self._lock:
            self.running_jobs.add(name)

    def job_finished(self, name: str) -> None:
        with self._lock:
            self.running_jobs.discard(name)

    def snapshot(self) -> dict:
        """Return a copy that a reader may use without the lock."""
        with self._lock:
            return {
                "loop_interval": self.loop_interval,
                "uptime_seconds": time.monotonic() - self.started_monotonic,
                "seconds_since_beat": time.monotonic() - self.last_beat_monotonic,
                "schedule_errors": list(self.schedule_errors),
                "running_jobs": sorted(self.running_jobs),
                "stopping": self.stopping,
            }

"""The resource guard: a task waits while memory, CPU or free disk are past the configured limits."""

import logging
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import psutil

from ...errors import TvcatError
from ...i18n import N_, _

logger = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 1.0


class ResourcesExhausted(TvcatError):
    template = N_("waited {seconds} s for resources and gave up: {reason}")


def resource_problem(limits, directory: Path) -> str | None:
    """Return why a task must wait under `limits` (a ResourceLimits section), or None when it may run."""
    if limits.max_memory_percent is not None:
        used = psutil.virtual_memory().percent
        if used > limits.max_memory_percent:
            return _("memory use {used:.0f}% is above max_memory_percent {limit:g}%").format(
                used=used, limit=limits.max_memory_percent)
    if limits.max_cpu_percent is not None:
        used = psutil.cpu_percent(interval=0.2)
        if used > limits.max_cpu_percent:
            return _("CPU use {used:.0f}% is above max_cpu_percent {limit:g}%").format(
                used=used, limit=limits.max_cpu_percent)
    if limits.min_free_disk_gb is not None:
        existing = next((path for path in (directory, *directory.parents) if path.exists()), Path("/"))
        free_gb = psutil.disk_usage(str(existing)).free / 1e9
        if free_gb < limits.min_free_disk_gb:
            return _("free disk under {path} is {free:.3g} GB, below min_free_disk_gb {limit:g} GB").format(
                path=existing, free=free_gb, limit=limits.min_free_disk_gb)
    return None


async def wait_for_resources(limits, directory: Path, report: Callable[[str], None] | None = None,
                             check: Callable[[], None] | None = None) -> None:
    """Wait until `resource_problem` finds none; raise ResourcesExhausted after limits.max_wait_seconds.

    Each new reason is logged and passed to `report`, so a user sees why the
    task waits. `check` runs before every look at the resources and may
    raise to end the wait, as it does for a task cancelled meanwhile.
    """
    started = time.monotonic()
    last_reason = None
    while True:
        if check is not None:
            check()
        reason = resource_problem(limits, directory)
        if reason is None:
            return
        waited = time.monotonic() - started
        if waited >= limits.max_wait_seconds:
            raise ResourcesExhausted(seconds=limits.max_wait_seconds, reason=reason)
        if reason != last_reason:
            logger.warning("task delayed: %s", reason)
            if report is not None:
                report(_("waiting: {reason}").format(reason=reason))
            last_reason = reason
        await anyio.sleep(CHECK_INTERVAL_SECONDS)

"""`tvcat test`: checks of the user's setup and a backup and restore round trip, which change none of the user's files.

The checks run in order: the configuration, the paths and permissions it
selects, the free space there, the hash chain of the catalog's event log
and a round trip on the bundled sample in a temporary directory.
"""

from .check import CheckResult, Setup, Status
from .runner import CHECKS, SelfTestFailed, SelfTestFoundFault, raise_for_failures, run_self_test

__all__ = [
    "CHECKS",
    "CheckResult",
    "SelfTestFailed",
    "SelfTestFoundFault",
    "Setup",
    "Status",
    "raise_for_failures",
    "run_self_test",
]

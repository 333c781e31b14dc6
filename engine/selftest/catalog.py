"""The self-test's catalog check: the hash chain of the user's event log, checked without changing it."""

import sqlite3

from ...catalog.repository import CATALOG_FILE
from ...errors import AuditFailed, DatabaseUnavailable
from ...i18n import _
from ..audit import check_log
from .check import Outcome, Setup, passed, skipped
from .readonly import connect_without_trace


def check_catalog(setup: Setup) -> Outcome:
    """Check the hash chain of the event log as `tvcat audit verify` does, recording nothing.

    Skips when the repository has no catalog yet. Raises AuditFailed, naming
    the first bad seq, when the chain is broken.
    """
    catalog = setup.repo / CATALOG_FILE
    if not catalog.exists():
        return skipped(_("no catalog at {path} yet: the first import or backup creates it").format(path=catalog))

    connection = connect_without_trace(catalog)
    try:
        report = check_log(connection)
    except sqlite3.Error as error:
        raise DatabaseUnavailable(path=str(catalog), reason=str(error)) from error
    finally:
        connection.close()

    if not report.ok:
        raise AuditFailed(detail=_("event log damaged at event {seq}: {problem}").format(
            seq=report.first_bad_seq, problem=report.problem))
    return passed(_("event log intact: {count} events checked").format(count=report.events_checked))

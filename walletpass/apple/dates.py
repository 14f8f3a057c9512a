"""HTTP dates on the pass endpoint: Last-Modified out, If-Modified-Since in.

Wallet sends back, as If-Modified-Since, the Last-Modified it was given; a pass whose
change time is not after it is answered 304.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime


def http_date(moment: datetime) -> str:
    """``moment`` as an RFC 7231 HTTP-date (``Sun, 06 Dec 2026 22:05:06 GMT``)."""
    return format_datetime(moment, usegmt=True)


def if_modified_since(raw: str | None) -> datetime | None:
    """The header's moment (UTC when it names no zone), or None when absent or unreadable:
    an unreadable date means "send the pass"."""
    if not raw:
        return None
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

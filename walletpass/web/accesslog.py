"""gunicorn's access log without pass serials or device ids.

A pass's serial is the key to its landing page (``/p/<serial>`` shows the member's card
with its name and balance) and to its downloads, so a log line naming it hands the card
to whoever reads the logs. The request line, the path and the referer are logged with
the serial, and a device's library id, replaced by ``<serial>`` and ``<device>``.

Use it with ``gunicorn --logger-class walletpass.web.accesslog.AccessLog``; ``walletpass
serve`` does.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from gunicorn.glogging import Logger

if TYPE_CHECKING:
    from gunicorn.glogging import _AtomsDict
    from gunicorn.http.message import Request
    from gunicorn.http.wsgi import Response

_DEVICE = re.compile(r"(/apple/v1/devices/)[^/?#\s]+")
_SERIAL = re.compile(
    r"(/p/|/apple/v1/passes/[^/?#\s]+/|/registrations/[^/?#\s]+/)"
    r"[^/?#\s.]+"
)


def redact(text: str) -> str:
    """``text`` (a path, a request line, a URL) with serials and device ids replaced."""
    return _SERIAL.sub(r"\1<serial>", _DEVICE.sub(r"\1<device>", text))


class AccessLog(Logger):
    """gunicorn's logger, its access lines redacted (:func:`redact`)."""

    def atoms(
        self,
        resp: Response,
        req: Request,
        environ: MutableMapping[str, Any],
        request_time: timedelta,
    ) -> _AtomsDict:
        atoms = super().atoms(resp, req, environ, request_time)
        # The request line, the path, the referer (and its header atom) may name a pass.
        values = cast(dict[str, Any], atoms)
        for key in ("r", "U", "f", "{referer}i"):
            value = values.get(key)
            if isinstance(value, str):
                values[key] = redact(value)
        return atoms

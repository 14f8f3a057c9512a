"""What one check found: a status, what is wrong and what to do, and the facts it read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


# Worst first: the admin lists warnings and errors before what is fine.
SEVERITY = {Status.ERROR: 0, Status.WARNING: 1, Status.OK: 2}


@dataclass(frozen=True)
class Finding:
    """One check's result.

    ``title`` and ``message`` are English texts marked for the catalogues (``N_``) with
    ``%(name)s`` placeholders; ``params`` fills them after translation, so the admin shows
    them in the page's language and the CLI in English from the same result.
    """

    check: str  # a stable id: "certificate", "chain", "expiry.pass", "apns", ...
    title: str
    status: Status
    message: str
    params: dict[str, str] = field(default_factory=dict)
    # What the check looked at, for an operator to verify (subject, dates, URLs).
    facts: dict[str, str] = field(default_factory=dict)
    # Which signing identity it is about ("" for installation-wide checks).
    subject: str = ""

    def text(self, translate: Callable[[str], str] = str) -> str:
        return translate(self.message) % self.params if self.params else translate(self.message)

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "title": self.title,
            "status": str(self.status),
            "message": self.text(),
            "subject": self.subject,
            "facts": dict(self.facts),
        }


def worst(findings: list[Finding]) -> Status:
    if any(f.status is Status.ERROR for f in findings):
        return Status.ERROR
    if any(f.status is Status.WARNING for f in findings):
        return Status.WARNING
    return Status.OK


def by_severity(findings: list[Finding]) -> list[Finding]:
    """Errors, then warnings, then what is fine; each group in the order checked."""
    return sorted(findings, key=lambda f: SEVERITY[f.status])

"""What the pass linter reports: one :class:`Finding` per problem, in plain words."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    # Wallet refuses the pass, or stops updating it.
    ERROR = "error"
    # The pass opens but shows something wrong, or relies on something deprecated.
    WARNING = "warning"
    # Nothing wrong today; worth knowing (e.g. a key newer iOS versions ignore).
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One problem: how bad, a stable code (docs/pass-lint.md), where, and what to do.

    ``path`` is a file in the bundle (``icon@2x.png``) or a JSON pointer into pass.json
    (``/storeCard/headerFields/0/value``).
    """

    severity: Severity
    code: str
    path: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": str(self.severity)}

    def __str__(self) -> str:
        return f"{self.severity}: {self.code} at {self.path}: {self.message}"


class Report:
    """Findings collected while linting, in the order found."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, code: str, path: str, message: str) -> None:
        self.findings.append(Finding(Severity.ERROR, code, path, message))

    def warning(self, code: str, path: str, message: str) -> None:
        self.findings.append(Finding(Severity.WARNING, code, path, message))

    def note(self, code: str, path: str, message: str) -> None:
        self.findings.append(Finding(Severity.NOTE, code, path, message))


def errors(findings: list[Finding]) -> list[Finding]:
    """The findings that make Wallet refuse or stop updating the pass."""
    return [f for f in findings if f.severity == Severity.ERROR]

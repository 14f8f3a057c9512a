"""Whether a program's design can be honoured on Apple Wallet: its poster style needs a
template with a poster layout, its barcode format needs every member's card number to fit
(walletpass.passes.barcodes). The API and the admin ask here before they save a design."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletpass.loyalty.models import Member
from walletpass.passes import barcodes, templates

# Ours to check; the rest of a design (colours, texts, images) is checked where it is typed.
APPLE_KEYS = ("poster_style", "barcode_format")
_SHOWN_UNFIT = 3


def design_problems(
    session: Session,
    templates_dir: Path,
    design: dict[str, Any],
    template: str,
    program_id: int | None,
) -> list[dict[str, str]]:
    """``[{"field": "poster_style" | "barcode_format", "message": ...}]``, each saying
    what to fix; empty when the design can be saved."""
    problems: list[dict[str, str]] = []
    if design.get("poster_style"):
        loaded = templates.load_template(templates.template_dir(templates_dir, template))
        if loaded.poster is None:
            problems.append(
                {
                    "field": "poster_style",
                    "message": f"the pass template {template!r} has no poster layout "
                    "(poster.json); turn the poster style off or pick another template",
                }
            )
    fmt = str(design.get("barcode_format") or "qr")
    if fmt not in barcodes.FORMATS:
        problems.append(
            {
                "field": "barcode_format",
                "message": f"unknown barcode format {fmt!r}; use one of "
                f"{', '.join(barcodes.FORMATS)}",
            }
        )
    elif fmt != "qr" and program_id is not None:
        unfit = _unfit_numbers(session, program_id, fmt)
        if unfit:
            problems.append(
                {
                    "field": "barcode_format",
                    "message": "members' card numbers do not fit this format: "
                    + "; ".join(unfit)
                    + ". Fix those card numbers (external_id) or keep the QR code.",
                }
            )
    return problems


def _unfit_numbers(session: Session, program_id: int, fmt: str) -> list[str]:
    found: list[str] = []
    numbers = session.scalars(
        select(Member.external_id).where(
            Member.program_id == program_id, Member.external_id.is_not(None)
        )
    )
    for number in numbers:
        try:
            barcodes.check_message(fmt, str(number))
        except barcodes.BarcodeFormatError as exc:
            found.append(str(exc))
            if len(found) == _SHOWN_UNFIT:
                break
    return found

"""A pass's .pkpass as its card shows now: the variables and the merchant's images worked
out here, the archive built and signed by ``walletpass.passes``."""

from __future__ import annotations

from sqlalchemy.orm import Session

from walletpass.cards.clock import fresh_until
from walletpass.cards.locations import store_locations
from walletpass.cards.memo import shared
from walletpass.cards.variables import pass_variables
from walletpass.config import Settings
from walletpass.db import utcnow
from walletpass.loyalty.models import Program
from walletpass.passes import services
from walletpass.passes.models import Pass


def build_bundle(session: Session, settings: Settings, pass_row: Pass) -> services.Bundle:
    """:func:`walletpass.passes.services.build_bundle` for what the pass shows now; only
    reads (follow with :func:`walletpass.passes.services.remember_signature`)."""
    # Before the variables: a moment between the two reads then ends the kept parts'
    # life at once, instead of being missed.
    until = fresh_until(session, pass_row, utcnow())
    variables = pass_variables(session, pass_row, settings)
    # The stores are every card's; their lock-screen text is in each card's language.
    lang = str(variables["language"])
    return services.build_bundle(
        settings,
        pass_row,
        variables,
        design_images=_design_images(session, pass_row),
        locations=shared(
            session,
            ("locations", pass_row.merchant_id, lang),
            lambda: store_locations(session, pass_row.merchant_id, lang),
        ),
        fresh_until=until,
    )


def _design_images(session: Session, pass_row: Pass) -> dict[str, str] | None:
    # The admin keeps a program's uploaded logo and strip in Program.design["images"].
    if pass_row.program_id is None:
        return None
    program = session.get(Program, pass_row.program_id)
    images = (program.design or {}).get("images") if program is not None else None
    return images if isinstance(images, dict) else None

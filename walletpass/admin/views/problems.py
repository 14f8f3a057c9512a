"""The "Wallet problems" page: what Apple Wallet and APNs reported about the merchant's
passes, grouped by pattern, with what each known problem means and what to do."""

from __future__ import annotations

from typing import Any

from flask import render_template

from walletpass.admin.problems import CATALOGUE
from walletpass.admin.views.common import bp, merchant_tz, tx, user
from walletpass.apple.problems import wallet_problems


@bp.get("/wallet-problems")
def wallet_problems_page() -> Any:
    """Only the signed-in merchant's rows: a message is theirs when it names one of their
    passes, an APNs error when it came from a push of theirs."""
    with tx() as session:
        groups = wallet_problems(session, user().merchant_id)
        tz = merchant_tz(session)
    return render_template("admin/wallet_problems.html", groups=groups, catalogue=CATALOGUE, tz=tz)

"""Reads shared by every card of a program or a merchant, made once per read-only
transaction.

The push job signs up to a thousand passes of a program in one read-only transaction
(walletpass.apple.prebuild); without this, each card read again what all of them show
alike: the program's overlay offer, its offers' and rewards' next start and end, the
merchant's stores. In a read-only transaction nothing the transaction does can change
those rows, and what others commit meanwhile is not what it reads on PostgreSQL either
(one snapshot per statement aside: a change committed during the batch bumps the passes,
which are then signed again). A transaction that writes reads them every time.

The moments (walletpass.cards.clock) are read against the first card's ``now``: a moment
that passes while the batch runs still ends the kept parts' life, at that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy.orm import Session

from walletpass.db import READONLY

T = TypeVar("T")
_MEMO = "walletpass_cards_memo"


def shared(session: Session, key: Hashable, read: Callable[[], T]) -> T:
    """``read()``, once per read-only transaction for ``key``; every time otherwise."""
    if not session.info.get(READONLY):
        return read()
    memo: dict[Hashable, object] = session.info.setdefault(_MEMO, {})
    if key not in memo:
        memo[key] = read()
    return memo[key]  # type: ignore[return-value]

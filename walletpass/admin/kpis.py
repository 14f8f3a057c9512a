"""Moved to :mod:`walletpass.analytics` (shared with the API); the admin imports it here."""

from walletpass.analytics import *  # noqa: F403

"""The admin's views, one module an area, all on one blueprint, ``bp`` (``common``).

``common`` holds the blueprint, its access guard and the helpers the areas share; each
area's module imports it and registers its routes on ``bp``, and no module imports an
area: arrows run one way, as pyproject's import-linter contract checks. Importing this
package registers every area.
"""

from __future__ import annotations

from walletpass.admin.views import (
    dashboard,
    health,
    members,
    offers,
    problems,
    programs,
    rewards,
    settings,
    signin,
    texts,
)
from walletpass.admin.views.common import bp

# Imported for the routes they register on ``bp``.
AREAS = (
    signin,
    dashboard,
    health,
    members,
    offers,
    problems,
    programs,
    rewards,
    settings,
    texts,
)

__all__ = ["AREAS", "bp"]

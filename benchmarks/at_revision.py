"""A walletpass module as it is at a git revision, imported beside the working tree's.

For side-by-side runs: a benchmark measures the code before a change and after it in the
same process, interleaved, instead of quoting two runs made at different times on a
machine whose speed drifts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def module_at(
    rev: str, path: str, *, imports: Mapping[str, ModuleType] | None = None
) -> ModuleType:
    """``path`` (a file of the repository) as of git ``rev``, as a module of its own.

    :param imports: module names that its imports resolve to while it loads, e.g.
        ``{"walletpass.passes.templates": module_at(rev, "walletpass/passes/templates.py")}``
        when the file at ``rev`` needs a sibling as it was then.
    """
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = re.sub(r"\W", "_", f"_at_{rev}_{path.removesuffix('.py')}")
    module = ModuleType(name)
    module.__file__ = f"{rev}:{path}"
    # dataclasses and pickling look a class's module up by name.
    sys.modules[name] = module
    replaced = {key: sys.modules.get(key) for key in imports or {}}
    sys.modules.update(imports or {})
    try:
        # The source is this repository's own file at a revision the caller names.
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102
    finally:
        for key, previous in replaced.items():
            if previous is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = previous
    return module

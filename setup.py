"""The wheel carries each gettext catalogue compiled (``.po`` → ``.mo``) beside its source.

Everything else about the build is in pyproject.toml; this only adds that step to
setuptools' ``build_py``. A checkout installed with ``pip install -e`` has no ``.mo``
files and compiles its catalogues in memory instead (walletpass/i18n/catalogues.py).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogues(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in Path(self.build_lib, "walletpass", "i18n", "locales").glob("*/*.po"):
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.name.replace("-", "_"))
            with po.with_suffix(".mo").open("wb") as target:
                write_mo(target, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildWithCatalogues})

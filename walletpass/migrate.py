"""Run Alembic migrations from code (`walletpass init`, the tests), and tell whether a
database's schema is the one this code needs."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import Connection, Engine, inspect, text

from walletpass.resources import MIGRATIONS_DIR

# Alembic's default name for the table holding the database's revision.
VERSION_TABLE = "alembic_version"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def stamp(engine: Engine, revision: str = "head") -> None:
    """Mark a database built from the models (the tests) as being at ``revision``."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.stamp(cfg, revision)


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the package ships its migrations"
    return head


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against this code's migrations."""

    current: str | None
    head: str
    # False when the database was migrated by a newer walletpass than this one.
    known: bool

    @property
    def behind(self) -> bool:
        """The code needs tables or columns the database lacks: nothing may run."""
        return self.current != self.head and self.known

    def describe(self) -> str:
        if self.current == self.head:
            return f"the database schema is current ({self.head})"
        if self.current is None:
            return "the database has no walletpass tables yet: run `walletpass init`"
        if not self.known:
            return (
                f"the database schema is at {self.current}, which this walletpass does not "
                f"know (its newest is {self.head}): a newer walletpass migrated it"
            )
        return (
            f"the database schema is at {self.current} and this walletpass needs "
            f"{self.head}: run `walletpass init` to migrate it"
        )


def schema_state(connection: Connection) -> SchemaState:
    # Read directly: Alembic's MigrationContext logs two INFO lines each time it is made.
    current = None
    if inspect(connection).has_table(VERSION_TABLE):
        current = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608
    known = current is None
    if current is not None:
        try:
            known = _scripts().get_revision(current) is not None
        except RevisionError:  # an id no migration of this package has
            known = False
    return SchemaState(current=current, head=head_revision(), known=known)

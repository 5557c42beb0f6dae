"""Opening the store: one SQLAlchemy engine, migrated to the newest schema before first use."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from prophecy_jupyter.paths import private_dir, private_file

MIGRATIONS = Path(__file__).with_name("migrations")
DB_FILE = "prophecy.db"


def sqlite_url(data_dir: Path) -> str:
    """The default store: a SQLite file under the data dir."""
    return f"sqlite:///{data_dir / DB_FILE}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; fsync at checkpoints only
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """The store's engine and sessions; ``open`` upgrades the schema (Alembic) to the newest."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer at a time and makes the others sleep and retry (up to 100 ms a
        # try); taking turns in the process instead wakes the next one as soon as it may go.
        self._turns = threading.RLock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    @classmethod
    def open(cls, url: str) -> Database:
        is_sqlite = url.startswith("sqlite")
        file = Path(url.split("///", 1)[1]) if is_sqlite and ":memory:" not in url else None
        if file is not None:
            # SQLite gives its -wal and -shm files the database file's mode: make that 0600 first
            private_dir(file.parent)
            private_file(file)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10} if is_sqlite else {},
            pool_pre_ping=not is_sqlite,
        )
        if is_sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
        database = cls(engine)
        database.migrate()
        if file is not None:
            for companion in (file, file.with_name(file.name + "-wal"), file.with_name(file.name + "-shm")):
                if companion.exists():
                    private_file(companion)
        return database

    def migrate(self) -> None:
        """Bring the schema to the newest revision (an upgrade never drops data)."""
        with _MIGRATION_LOCK, self.engine.begin() as connection:
            config = AlembicConfig()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._turns, self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


_MIGRATION_LOCK = threading.Lock()

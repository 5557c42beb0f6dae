"""Settings of the gateway server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LIVY_VERSION = "0.9.0-incubating"
SUPPORTED_SESSION_KINDS = ("pyspark", "python", "sql", "shared", "snowpark")
SUPPORTED_STATEMENT_KINDS = ("pyspark", "python", "sql")


@dataclass
class GatewayConfig:
    """How the gateway listens, runs sessions and applies Livy's lifetimes."""

    host: str = "127.0.0.1"
    port: int = 8998
    isolation: Literal["shared", "process"] = "shared"
    """``shared``: sessions attach to one warm JVM; ``process``: each session gets its own JVM."""
    master: str = "local[*]"
    driver_memory: str = "1g"
    spark_conf: dict[str, str] = field(default_factory=dict)
    spark_ui: bool = False
    idle_timeout: float = 3600.0
    """Seconds without a submit, cancel or completion before a session is deleted (0 = never)."""
    idle_skip_busy: bool = False
    """Livy's ``timeout-check.skip-busy``: off by default, as in Livy."""
    finished_session_ttl: float = 600.0
    max_sessions: int = 32
    retained_statements: int = 100
    sql_max_rows: int = 1000
    cancel_force_after: float = 30.0
    csrf_protection: bool = False
    long_poll: bool = True
    """Answer ``?wait=SECONDS`` on statement GETs as soon as the statement changes."""
    uploads: bool = True
    """Take tables sent to a session as Arrow uploads (else clients send them as statements)."""
    exit_when_idle: float = 0.0
    """Seconds without a session or a batch after which the gateway stops itself (0: never); its
    owner starts it again when it is next needed."""
    niceness: int = 0
    """How far below the gateway's own priority its JVM and interpreters run (0: the same), so
    that its HTTP loop (and the Jupyter server beside it) stay responsive when they fill the CPUs."""
    spare_interpreter: bool = False
    """Keep one interpreter started and attached to the shared JVM, for the next session to take."""
    class_archive: str | None = None
    """A private folder where the JVMs' class archive is kept and made (None: no archive)."""
    auth_token: str | None = field(default=None, repr=False)
    """When set, every request needs ``Authorization: Bearer <token>``."""
    startup_timeout: float = 180.0
    max_body_bytes: int = 64 * 1024 * 1024

"""How the services behave, as traitlets: in a Jupyter server these are the extension's own
options (``c.ProphecyJupyter.*``, since the extension app is one of these); the command line and a
kernel without a server build one from the environment (``prophecy_jupyter.environment``). Nothing
here reads the environment."""

from __future__ import annotations

from collections.abc import Mapping

from traitlets import Bool, Dict, Enum, Float, Integer, Unicode
from traitlets.config import Configurable

from prophecy_jupyter.engines.base import PollPolicy
from prophecy_jupyter.results.transport import DEFAULT_CHUNK_CHARS


class ServiceSettings(Configurable):
    max_sessions_per_user = Integer(10, config=True, help="Live sessions per user (0: no limit).")
    idle_session_timeout = Float(3600.0, config=True, help="Seconds before an unused session is closed.")
    session_startup_timeout = Float(600.0, config=True, help="Seconds a session may take to start.")
    keepalive_interval = Float(300.0, config=True, help="Seconds between keepalives during long cells.")
    health_interval = Float(2.0, config=True, help="Seconds between checks of a session running a statement.")
    poll_failure_budget = Float(
        60.0, config=True, help="Seconds a running statement may be out of reach before its run fails."
    )
    workers = Integer(
        64, config=True, help="Threads that send and poll statements and fetch tables (made as needed)."
    )
    poll_first_delay = Float(0.003, config=True, help="Seconds before a statement is first checked.")
    poll_ratio = Float(
        0.1,
        config=True,
        help="Later checks wait this share of the statement's time so far (engines without a cadence of "
        "their own).",
    )
    poll_cap = Float(1.0, config=True, help="Seconds between checks of a statement at the most.")
    long_poll_wait = Float(1.0, config=True, help="Seconds a server that long-polls holds each check.")
    tick_interval = Float(
        0.5, config=True, help="Seconds between rounds of upkeep (idle sessions, old runs)."
    )
    finished_runs_kept = Float(600.0, config=True, help="Seconds a finished run can still be looked up.")
    told_runs_kept = Float(
        10.0,
        config=True,
        help="Seconds a finished run can still be looked up once a client was told how it ended (a "
        "retried request finds it; a table waiting to be fetched stays).",
    )
    fetched_tables_kept = Float(
        60.0, config=True, help="Seconds a table result stays once fetched (a retried fetch finds it)."
    )
    chunk_chars = Integer(
        DEFAULT_CHUNK_CHARS, config=True, help="Characters of a table sent by one statement at the most."
    )
    max_table_rows = Integer(
        1_000_000,
        config=True,
        help="Rows a table result keeps at most, whatever the notebook asks (-n -1 included); the "
        "user is told when a result is cut (0: no cap).",
    )
    max_buffered_bytes = Integer(
        512 * 1024 * 1024,
        config=True,
        help="Bytes of table results a user may have waiting on the server before new ones are "
        "refused (0: no cap). A result leaves a minute after its kernel fetched it.",
    )
    livy_proxy_user = Enum(
        ["auto", "always", "never"],
        "auto",
        config=True,
        help="Create Livy sessions and batches with proxyUser set to the Jupyter user ('auto': under "
        "JupyterHub). A notebook's %%configure cannot change it.",
    )
    livy_proxy_users = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="Jupyter user → the user Livy runs their sessions as (others: their own name).",
    )
    under_hub = Bool(False, help="Whether these services run in a user's server on a JupyterHub.")
    projects_dir = Unicode(
        "", config=True, help="Where users' working copies of projects live (default: <data dir>/projects)."
    )
    local_driver_memory = Unicode(
        "2g",
        config=True,
        help="Heap of the one JVM all local sessions share: twice Spark's default, since several "
        "notebooks share it; more slows its start.",
    )
    local_isolation = Enum(
        ["shared", "process"],
        "shared",
        config=True,
        help="Local sessions as interpreters on one shared JVM, or each in a JVM of its own.",
    )
    local_max_sessions = Integer(0, config=True, help="Local sessions at once (0: the gateway's default).")
    local_warm_start = Enum(
        ["auto", "always", "never"],
        "auto",
        config=True,
        help="Start the local fabric's gateway and its JVM (at low priority) when the server starts, so "
        "that the first local cell does not wait for them ('auto': unless under JupyterHub).",
    )
    local_class_archive = Enum(
        ["auto", "always", "never"],
        "auto",
        config=True,
        help="Start the local fabric's JVMs with a class archive (about 160 MB in the data folder, made "
        "once in the background at the lowest priority), so that they start and warm up in about half "
        "the time ('auto': unless under JupyterHub).",
    )
    local_idle_stop = Float(
        1800.0,
        config=True,
        help="Seconds the local fabric's gateway and JVM stay up with no session before they stop "
        "(0: until the server stops); the next local cell starts them again.",
    )
    local_niceness = Integer(
        10,
        config=True,
        help="How many steps below the server's CPU priority the local fabric's JVM and interpreters "
        "run, and where Linux shares the CPU between sessions first (autogroup), the local gateway's "
        "session (0-19; 0: the same), so that the server stays responsive when they fill the CPUs.",
    )

    @property
    def poll(self) -> PollPolicy:
        """When statements are checked on engines that say nothing of their own."""
        return PollPolicy(self.poll_first_delay, self.poll_ratio, self.poll_cap, self.long_poll_wait)

    @property
    def warms_local_fabric(self) -> bool:
        """Whether the server starts the local fabric's gateway as it starts."""
        return self.local_warm_start == "always" or (self.local_warm_start == "auto" and not self.under_hub)

    @property
    def keeps_class_archive(self) -> bool:
        """Whether the local fabric's JVMs start with a class archive."""
        chosen = self.local_class_archive
        return chosen == "always" or (chosen == "auto" and not self.under_hub)

    @property
    def proxy_users(self) -> Mapping[str, str] | None:
        """On Livy fabrics, whom each user's sessions run as (a user not listed: their own name);
        None: as the fabric's credential says."""
        on = self.livy_proxy_user == "always" or (self.livy_proxy_user == "auto" and self.under_hub)
        return dict(self.livy_proxy_users) if on else None

"""``jupyter prophecy gateway``: run the Livy-compatible gateway over local PySpark."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from pathlib import Path

from prophecy_jupyter.cli.options import key_values
from prophecy_jupyter.gateway.config import GatewayConfig
from prophecy_jupyter.paths import data_dir, private_dir, write_private

TOKEN_ENV = "PROPHECY_GATEWAY_TOKEN"
TOKEN_FILE = "gateway.token"
log = logging.getLogger("prophecy_jupyter.gateway")


def gateway_token(args: argparse.Namespace) -> str | None:
    """The token clients must send: from the environment, or a private file under the data dir."""
    if args.no_auth:
        log.warning("serving without authentication: anyone who can reach the port can run code")
        return None
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = data_dir() / TOKEN_FILE
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32).encode())
    log.info("clients must send the token in %s (as Bearer, or as the Basic auth password)", path)
    return path.read_text().strip()


def add_parser(commands) -> None:
    defaults = GatewayConfig()
    parser = commands.add_parser(
        "gateway",
        help="Run the Livy-compatible gateway on local PySpark.",
        description="Serve Apache Livy's REST API with sessions on local PySpark. Clients must send "
        f"a token, as Bearer or as the Basic auth password: ${TOKEN_ENV} when set, otherwise the one in "
        f"<data dir>/{TOKEN_FILE} (created on first start, readable only by you).",
    )
    parser.add_argument("--host", default=defaults.host, help="Address to bind (default %(default)s).")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="Port (default %(default)s; 0 = any free port)."
    )
    parser.add_argument(
        "--isolation",
        choices=["shared", "process"],
        default=defaults.isolation,
        help="shared: sessions share one warm JVM; process: a JVM per session.",
    )
    parser.add_argument("--master", default=defaults.master, help="Spark master (default %(default)s).")
    parser.add_argument(
        "--driver-memory", default=defaults.driver_memory, help="Driver heap of the shared JVM."
    )
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting (repeatable)."
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=defaults.idle_timeout,
        help="Seconds without submit/cancel/completion before a session is deleted (0 = never).",
    )
    parser.add_argument(
        "--idle-skip-busy", action="store_true", help="Never delete a session while it runs a statement."
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=defaults.max_sessions,
        help="Live sessions the gateway runs at once.",
    )
    parser.add_argument(
        "--sql-max-rows",
        type=int,
        default=defaults.sql_max_rows,
        help="Rows a statement of kind sql returns (Livy's default %(default)s).",
    )
    parser.add_argument(
        "--csrf-protection", action="store_true", help="Require X-Requested-By on non-GET requests."
    )
    parser.add_argument(
        "--no-long-poll", action="store_true", help="Answer statement GETs at once, like Livy."
    )
    parser.add_argument(
        "--no-uploads",
        action="store_true",
        help="Take no Arrow uploads, like Livy: tables sent to a session come as statements.",
    )
    parser.add_argument(
        "--exit-when-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="Stop once no session or batch has been alive for SECONDS (default 0: never).",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="Run the JVM and the interpreters N steps below the gateway's CPU priority (0-19), so that "
        "its HTTP loop stays responsive when they fill the CPUs.",
    )
    parser.add_argument(
        "--spare-interpreter",
        action="store_true",
        help="Keep one interpreter started and attached to the shared JVM, so that the next session "
        "is ready at once (it costs one interpreter's memory, about 130 MB).",
    )
    parser.add_argument(
        "--class-archive",
        metavar="FOLDER",
        help="Start the JVMs with a class archive kept in FOLDER (made there in the background, at "
        "the lowest priority, when there is none): they start and warm up in about half the time.",
    )
    parser.add_argument("--spark-ui", action="store_true", help="Enable the Spark web UI.")
    parser.add_argument(
        "--no-auth", action="store_true", help="Accept requests without a token (trusted machines only)."
    )
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from prophecy_jupyter.gateway.app import serve

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").setLevel(
        logging.WARNING if args.log_level != "DEBUG" else logging.DEBUG
    )
    config = GatewayConfig(
        host=args.host,
        port=args.port,
        isolation=args.isolation,
        master=args.master,
        driver_memory=args.driver_memory,
        spark_conf=key_values(args.conf, "--conf"),
        idle_timeout=args.idle_timeout,
        idle_skip_busy=args.idle_skip_busy,
        max_sessions=args.max_sessions,
        sql_max_rows=args.sql_max_rows,
        csrf_protection=args.csrf_protection,
        long_poll=not args.no_long_poll,
        uploads=not args.no_uploads,
        niceness=max(0, min(19, args.nice)),
        spare_interpreter=args.spare_interpreter,
        class_archive=str(private_dir(Path(args.class_archive).expanduser())) if args.class_archive else None,
        exit_when_idle=max(0.0, args.exit_when_idle),
        spark_ui=args.spark_ui,
        auth_token=gateway_token(args),
    )
    asyncio.run(serve(config, parent_pid=args.parent_pid, ready_fd=args.ready_fd))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The gateway command alone (``python -m prophecy_jupyter.cli.gateway_command [OPTIONS]``):
    how the local fabric starts it, without importing the rest of the command line (the store and
    the services take about 0.4 s to import)."""
    parser = argparse.ArgumentParser(prog="jupyter prophecy")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["gateway", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

"""``jupyter prophecy fabric``: add, list, edit, test and remove fabrics; start their clusters."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.cli.options import add_secret_file, json_values, key_values, read_secret
from prophecy_jupyter.kinds import REGISTRY, creatable
from prophecy_jupyter.services.connection_test import check_fabric
from prophecy_jupyter.services.teams import DEFAULT_TEAM

# Command-line options that become the fabric's settings (which ones a kind takes is checked).
SETTING_OPTIONS = {
    "url": "Livy server URL",
    "auth": "auth scheme (livy: none|basic|bearer|kerberos; databricks: pat|oauth-m2m|"
    "profile; snowflake: password|key-pair|oauth|pat; airflow: password|token|none)",
    "username": "user name for basic auth",
    "ca_bundle": "CA bundle to verify the server's TLS certificate",
    "host": "Databricks workspace URL; Snowflake host name (private link, instead of the account's)",
    "cluster_id": "Databricks cluster id",
    "warehouse_id": "SQL warehouse id",
    "catalog": "default catalog",
    "schema": "default schema",
    "client_id": "OAuth client id",
    "profile": "~/.databrickscfg profile",
    "account": "Snowflake account",
    "user": "Snowflake user",
    "warehouse": "Snowflake warehouse",
    "database": "default database",
    "role": "Snowflake role",
    "port": "Snowflake port (with --host)",
    "protocol": "Snowflake protocol: https, or http to a host on this machine",
    "login_timeout": "seconds a Snowflake login may take (default 60)",
    "network_timeout": "seconds a Snowflake request may take",
    "dags_folder": "airflow: a folder on this machine that Airflow's DAG processor reads",
    "airflow_fabric": "livy: the airflow fabric (team/name) its jobs are deployed to",
    "airflow_connection": "livy: Airflow's connection id for this Livy server (default livy_default)",
    "code_location": "livy: URI prefix Livy reads jobs' pipeline code from",
    "job_code": "databricks: where jobs take pipeline code: workspace (imported) or git",
    "job_code_root": "databricks: workspace folder jobs' code is imported under (/Shared/prophecy)",
}


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "fabric",
        help="Add, list, edit, test and remove fabrics.",
        description="Fabrics are named execution environments owned by teams.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="Add a fabric to a team (team admins).",
        description="Add a fabric. When its auth needs a secret, yours is read from stdin when piped, "
        "otherwise from a prompt; never from the command line. Other members set their own "
        "with `credentials set`.",
    )
    add.add_argument("name", help="Fabric name: letters, digits, '.', '_' or '-'.")
    add.add_argument("--team", default=DEFAULT_TEAM, help="Owning team (default %(default)s).")
    add.add_argument("--kind", default="livy", choices=creatable())
    _add_settings(add)
    add.add_argument("--no-secret", action="store_true", help="Do not ask for your secret now.")
    add_secret_file(add)
    add.add_argument("--replace", action="store_true", help="Replace a fabric of the same name in the team.")
    add.set_defaults(handler=run_add)

    edit = actions.add_parser(
        "edit",
        help="Change a fabric's settings (team admins).",
        description="Change the given settings of a fabric; the others stay.",
    )
    edit.add_argument("fabric", help="Fabric name, team/name or id.")
    edit.add_argument("--rename", help="New name.")
    _add_settings(edit, defaults=False)
    edit.set_defaults(handler=run_edit)

    listing = actions.add_parser("list", help="List the fabrics you can use.", description="List fabrics.")
    listing.add_argument("--json", action="store_true", help="Print JSON (settings, never secrets).")
    listing.set_defaults(handler=run_list)

    kinds = actions.add_parser(
        "kinds", help="The kinds of fabric, and what each can do.", description="List the fabric kinds."
    )
    kinds.add_argument("--json", action="store_true", help="Print JSON.")
    kinds.set_defaults(handler=run_kinds)

    test = actions.add_parser("test", help="Check a fabric step by step with your credential.")
    test.add_argument("fabric")
    test.add_argument("--json", action="store_true")
    test.set_defaults(handler=run_test)

    start = actions.add_parser(
        "start",
        help="Start a databricks fabric's cluster and wait until it runs.",
        description="Start the fabric's cluster when it is terminated, printing its state as it "
        "comes up (PENDING, then RUNNING).",
    )
    start.add_argument("fabric")
    start.add_argument("--no-wait", action="store_true", help="Return once the start is requested.")
    start.add_argument("--timeout", type=float, default=1800.0, help="Seconds to wait (default 1800).")
    start.set_defaults(handler=run_start)

    clusters = actions.add_parser(
        "clusters", help="List the clusters of a databricks fabric's workspace (with your credential)."
    )
    clusters.add_argument("fabric")
    clusters.add_argument("--json", action="store_true")
    clusters.set_defaults(handler=run_clusters)

    remove = actions.add_parser("remove", help="Remove a fabric and everyone's credentials for it.")
    remove.add_argument("fabric")
    remove.set_defaults(handler=run_remove)


def _add_settings(parser, defaults: bool = True) -> None:
    for name, help_text in SETTING_OPTIONS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, help=help_text)
    parser.add_argument(
        "--allow-http",
        action="store_true",
        default=None,
        help="Let a Livy fabric use plain http to another machine (code, data and credentials unencrypted).",
    )
    parser.add_argument(
        "--header", action="append", default=[], metavar="K=V", help="Extra HTTP header (never a credential)."
    )
    parser.add_argument("--conf", action="append", default=[], metavar="K=V", help="Default Spark setting.")
    parser.add_argument(
        "--job-size",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='Named session settings, e.g. M=\'{"driverMemory": "4g"}\'.',
    )
    parser.add_argument(
        "--environment", choices=["dev", "staging", "prod"], default="dev" if defaults else None
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = {name: getattr(args, name) for name in SETTING_OPTIONS if getattr(args, name) is not None}
    if args.header:
        settings["headers"] = key_values(args.header, "--header")
    if args.allow_http:
        settings["allow_http"] = True
    return settings


def run_add(args: argparse.Namespace) -> int:
    spec = {
        "name": args.name,
        "kind": args.kind,
        "settings": _settings(args),
        "conf": key_values(args.conf, "--conf"),
        "job_sizes": json_values(args.job_size, "--job-size"),
        "environment": args.environment,
    }
    with services() as (built, user):
        existing = next(
            (f for f in built.fabrics.list(user) if f.team == args.team and f.name == args.name), None
        )
        if existing is not None and args.replace:
            fabric = built.fabrics.update(user, existing.id, spec)
        else:
            fabric = built.fabrics.create(user, args.team, spec)
        stored = ""
        if fabric.secret_needed and not args.no_secret:
            secret = read_secret(f"Your {fabric.secret_needed} for '{fabric.ref}': ", args.from_file)
            built.fabrics.set_secret(user, fabric.id, secret)
            stored = f" Your {fabric.secret_needed} is stored encrypted in the vault."
        print(f"Added fabric '{fabric.ref}' ({fabric.kind}).{stored}")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    change: dict[str, Any] = {}
    with services() as (built, user):
        fabric = built.fabrics.get(user, args.fabric)
        settings = _settings(args)
        if settings:
            change["settings"] = {**fabric.settings, **settings}
        if args.conf:
            change["conf"] = {**fabric.conf, **key_values(args.conf, "--conf")}
        if args.job_size:
            change["job_sizes"] = {**fabric.job_sizes, **json_values(args.job_size, "--job-size")}
        if args.environment:
            change["environment"] = args.environment
        if args.rename:
            change["name"] = args.rename
        if not change:
            raise ValueError("nothing to change: give the settings to change")
        updated = built.fabrics.update(user, fabric.id, change)
        print(f"Updated fabric '{updated.ref}'.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with services() as (built, user):
        fabrics = built.fabrics.list(user)
        rows = []
        for fabric in fabrics:
            status = built.fabrics.credential_status(user, fabric)
            rows.append({**fabric.to_json(), "credential_set": status.set if status else None})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{'FABRIC':<28} {'KIND':<15} {'ENV':<8} {'YOUR SECRET':<12} ENDPOINT")
    for row in rows:
        secret = {True: "set", False: "missing", None: "-"}[row["credential_set"]]
        print(f"{row['ref']:<28} {row['kind']:<15} {row['environment']:<8} {secret:<12} {row['endpoint']}")
    return 0


def run_kinds(args: argparse.Namespace) -> int:
    kinds = [kind.describe() for kind in REGISTRY.values()]
    if args.json:
        print(json.dumps(kinds, indent=2))
        return 0
    print(f"{'KIND':<16} {'CELLS':<19} {'PIPELINES':<10} CAN ALSO")
    for kind in kinds:
        also = ", ".join(kind["capabilities"]) or "-"
        print(f"{kind['name']:<16} {kind['cells']:<19} {kind['pipelines']:<10} {also}")
    return 0


def run_test(args: argparse.Namespace) -> int:
    with services() as (built, user):
        report = check_fabric(built.fabrics, user, args.fabric)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for step in report.steps:
            print(f"  ok  {step}")
        print(("connected: " if report.ok else f"FAILED at {report.stage}: ") + report.message)
    return 0 if report.ok else 1


def run_start(args: argparse.Namespace) -> int:
    with services() as (built, user):
        cluster = built.clusters.start(user, args.fabric)
        shown = None
        started = time.monotonic()
        while not args.no_wait and cluster["state"] in ("PENDING", "RESTARTING"):
            if (cluster["state"], cluster["message"]) != shown:
                shown = (cluster["state"], cluster["message"])
                print(f"{time.monotonic() - started:6.0f} s  {_cluster_line(cluster)}", flush=True)
            if time.monotonic() - started > args.timeout:
                print(f"Still {cluster['state']} after {args.timeout:.0f} s; it keeps starting.")
                return 1
            time.sleep(min(5.0, 0.5 + (time.monotonic() - started) / 10))
            cluster = built.clusters.state(user, args.fabric)
    print(_cluster_line(cluster))
    return 0 if args.no_wait or cluster["state"] in ("RUNNING", "RESIZING") else 1


def run_clusters(args: argparse.Namespace) -> int:
    with services() as (built, user):
        listed = built.clusters.list(user, args.fabric)
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    print(f"{'CLUSTER ID':<28} {'STATE':<12} NAME")
    for cluster in listed:
        print(f"{cluster['cluster_id']:<28} {cluster['state']:<12} {cluster['name']}")
    return 0


def _cluster_line(cluster: dict[str, str]) -> str:
    name = cluster["name"] or cluster["cluster_id"]
    return f"cluster {name}: {cluster['state']}" + (f" ({cluster['message']})" if cluster["message"] else "")


def run_remove(args: argparse.Namespace) -> int:
    with services() as (built, user):
        fabric = built.fabrics.get(user, args.fabric)
        built.fabrics.delete(user, fabric.id)
    print(f"Removed fabric '{fabric.ref}' and the credentials for it.")
    return 0

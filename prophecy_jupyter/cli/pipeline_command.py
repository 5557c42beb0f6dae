"""``jupyter prophecy pipeline``: generate a pipeline from a notebook into a project, show a
committed one, and run it on a fabric."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.cli.options import key_values


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "pipeline",
        help="Generate pipelines from notebooks, show and run them.",
        description="A pipeline is pipelines/<name>/ in a project: pipeline.py (the cells that ran on "
        "the fabric, as functions called from main()), pipeline.yaml and a README.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    generate = actions.add_parser("generate", help="Write a notebook's pipeline into your working copy.")
    generate.add_argument("notebook", type=Path)
    generate.add_argument("--project", required=True)
    generate.add_argument("--name", help="Pipeline name (default: the notebook's file name).")
    generate.set_defaults(handler=run_generate)

    show = actions.add_parser("show", help="A committed pipeline's files (from the cache when it can).")
    show.add_argument("name")
    show.add_argument("--project", required=True)
    show.add_argument("--file", default="pipeline.py", help="Which file (default %(default)s).")
    show.add_argument("--draft", action="store_true", help="The last generated draft, committed or not.")
    show.set_defaults(handler=run_show)

    run = actions.add_parser(
        "run",
        help="Run a committed pipeline on a fabric.",
        description="As a Livy batch on livy fabrics (the Livy server must be able to read this "
        "machine's temporary folder), in a session of the fabric otherwise. Exits 1 when it fails.",
    )
    run.add_argument("name")
    run.add_argument("--project", required=True)
    run.add_argument("--fabric", required=True)
    run.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="A pipeline parameter."
    )
    run.set_defaults(handler=run_run)


def run_generate(args: argparse.Namespace) -> int:
    with services() as (built, user):
        path = args.notebook.resolve()  # as a kernel without a server names its notebook
        generated = built.notebooks.generate_pipeline(user, args.project, str(path), path, args.name)
    pipeline, changed = generated.pipeline, generated.changed
    counts = f"{len(pipeline.steps)} step(s), {len(pipeline.parameters)} parameter(s)"
    print(
        f"Pipeline '{pipeline.name}': {counts}; "
        + (f"changed {', '.join(changed)}." if changed else "no changes.")
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    with services() as (built, user):
        if args.draft:
            files = built.projects.draft(user, args.project, args.name)
            if files is None:
                raise ValueError(f"No draft of pipeline {args.name}; generate it first.")
        else:
            files = built.projects.pipeline_files(user, args.project, args.name)
    path = f"pipelines/{args.name}/{args.file}"
    if path not in files:
        raise ValueError(f"{path} is not in the pipeline (files: {', '.join(sorted(files))})")
    sys.stdout.write(files[path].decode())
    return 0


def run_run(args: argparse.Namespace) -> int:
    parameters = key_values(args.param, "--param")
    with services() as (built, user):
        outcome = built.pipeline_runs.run(
            user, args.project, args.name, args.fabric, parameters, lambda m: print(m, file=sys.stderr)
        )
    print(outcome.output)
    if not outcome.ok:
        print(f"Pipeline {args.name} failed on fabric '{outcome.fabric}'.", file=sys.stderr)
    return 0 if outcome.ok else 1

"""``jupyter prophecy project``: team Git repositories, your token for them, and Git operations on
your working copy (status, diff, commit, push, pull, branch, log); ``cache clear``."""

from __future__ import annotations

import argparse
import json

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.cli.options import read_secret
from prophecy_jupyter.git.providers import PROVIDERS
from prophecy_jupyter.services.teams import DEFAULT_TEAM


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "project",
        help="Team Git repositories and your working copies of them.",
        description="A project is a team's Git repository where pipelines are committed. Each user "
        "brings their own token and has their own working copy.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="Add a team's repository (team admins).")
    add.add_argument("name")
    add.add_argument("--team", default=DEFAULT_TEAM, help="Owning team (default %(default)s).")
    add.add_argument("--url", required=True, help="HTTPS clone URL, without credentials.")
    add.add_argument("--provider", default="generic", choices=sorted(PROVIDERS), help="Git hosting provider.")
    add.add_argument("--branch", default="main", help="Default branch (default %(default)s).")
    add.set_defaults(handler=run_add)

    listing = actions.add_parser("list", help="Projects of your teams.")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)

    remove = actions.add_parser("remove", help="Forget a project (team admins); the repository is untouched.")
    remove.add_argument("project")
    remove.set_defaults(handler=run_remove)

    token = actions.add_parser(
        "token",
        help="Set your token for a project (from stdin or a prompt).",
        description="Your personal access token, stored encrypted; never give it on the command line.",
    )
    token.add_argument("project")
    token.add_argument("--username", help="Your account name (Bitbucket Server and generic Git need it).")
    token.set_defaults(handler=run_token)

    for name, help_text in (
        ("status", "Changed files of your working copy."),
        ("diff", "Your working copy against the last commit."),
        ("push", "Push your branch."),
        ("pull", "Fetch and rebase onto the remote branch; conflicts are listed, nothing is lost."),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("project")
        if name == "status":
            action.add_argument("--json", action="store_true")
        action.set_defaults(handler=run_git, git=name)

    commit = actions.add_parser("commit", help="Commit every change of your working copy as you.")
    commit.add_argument("project")
    commit.add_argument("-m", "--message", required=True)
    commit.set_defaults(handler=run_commit)

    branch = actions.add_parser("branch", help="Switch your working copy to a branch.")
    branch.add_argument("project")
    branch.add_argument("branch")
    branch.add_argument("--create", action="store_true", help="Create the branch from the current one.")
    branch.set_defaults(handler=run_branch)

    log = actions.add_parser("log", help="Recent commits.")
    log.add_argument("project")
    log.add_argument("-n", type=int, default=20)
    log.set_defaults(handler=run_log)

    cache = commands.add_parser("cache", help="The encrypted local cache of code.")
    cache_actions = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    clear = cache_actions.add_parser("clear", help="Remove every cached draft and project snapshot.")
    clear.set_defaults(handler=run_cache_clear)


def run_add(args: argparse.Namespace) -> int:
    spec = {"name": args.name, "url": args.url, "provider": args.provider, "default_branch": args.branch}
    with services() as (built, user):
        project = built.projects.create(user, args.team, spec)
    print(
        f"Added project '{project.ref}' ({project.url}). Each member sets their token with "
        f"`jupyter prophecy project token {project.ref}`."
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    with services() as (built, user):
        rows = []
        for project in built.projects.list(user):
            status = built.projects.token_status(user, project)
            rows.append({**project.to_json(), "token_set": status.set})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'PROJECT':<28} {'PROVIDER':<17} {'BRANCH':<12} {'YOUR TOKEN':<11} URL")
    for row in rows:
        token = "set" if row["token_set"] else "missing"
        print(f"{row['ref']:<28} {row['provider']:<17} {row['default_branch']:<12} {token:<11} {row['url']}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with services() as (built, user):
        project = built.projects.get(user, args.project)
        built.projects.delete(user, project.ref)
    print(f"Removed project '{project.ref}' and the tokens for it.")
    return 0


def run_token(args: argparse.Namespace) -> int:
    with services() as (built, user):
        project = built.projects.get(user, args.project)
        built.projects.set_token(
            user, project.ref, read_secret(f"Your token for '{project.ref}': "), args.username
        )
    print(f"Your token for '{project.ref}' is stored encrypted.")
    return 0


def run_git(args: argparse.Namespace) -> int:
    with services() as (built, user):
        projects = built.projects
        if args.git == "status":
            status = projects.status(user, args.project)
            if args.json:
                print(json.dumps(status, indent=2))
                return 0
            for note in status["notes"]:
                print(note)
            print(
                f"{status['project']} on {status['branch']}: "
                + (f"{len(status['changes'])} change(s)" if status["changes"] else "nothing to commit")
            )
            for change in status["changes"]:
                print(f"  {change['status']:<10} {change['path']}")
        elif args.git == "diff":
            print(projects.diff(user, args.project))
        elif args.git == "push":
            print(f"Pushed {projects.push(user, args.project)}.")
        else:
            print(f"Pulled {projects.pull(user, args.project)}.")
    return 0


def run_commit(args: argparse.Namespace) -> int:
    with services() as (built, user):
        commit = built.projects.commit(user, args.project, args.message)
    print(f"Committed {commit[:10]}." if commit else "Nothing to commit.")
    return 0


def run_branch(args: argparse.Namespace) -> int:
    with services() as (built, user):
        built.projects.branch(user, args.project, args.branch, args.create)
    print(f"On branch {args.branch}.")
    return 0


def run_log(args: argparse.Namespace) -> int:
    with services() as (built, user):
        for entry in built.projects.history(user, args.project, args.n):
            subject = entry["message"].splitlines()[0] if entry["message"] else ""
            print(f"{entry['id'][:10]} {entry['date'][:19]} {entry['author']:<16} {subject}")
    return 0


def run_cache_clear(args: argparse.Namespace) -> int:
    with services() as (built, _user):
        removed = built.cache.clear()
    print(f"Removed {removed} cache entr{'y' if removed == 1 else 'ies'}.")
    return 0

"""``jupyter prophecy team``: teams and their members."""

from __future__ import annotations

import argparse
import json

from prophecy_jupyter.cli.context import services
from prophecy_jupyter.services.teams import ADMIN, MEMBER


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "team",
        help="Teams and their members.",
        description="Teams own fabrics; admins manage members and fabrics.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="Your teams and your role in each.")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    create = actions.add_parser("create", help="Create a team; you become its admin.")
    create.add_argument("name")
    create.set_defaults(handler=run_create)
    members = actions.add_parser("members", help="A team's members.")
    members.add_argument("team")
    members.add_argument("--json", action="store_true")
    members.set_defaults(handler=run_members)
    add = actions.add_parser("add-member", help="Add a member or change their role (admins).")
    add.add_argument("team")
    add.add_argument("username")
    add.add_argument("--admin", action="store_true", help="Make them an admin.")
    add.set_defaults(handler=run_add_member)
    remove = actions.add_parser("remove-member", help="Remove a member (admins).")
    remove.add_argument("team")
    remove.add_argument("username")
    remove.set_defaults(handler=run_remove_member)


def run_list(args: argparse.Namespace) -> int:
    with services() as (built, user):
        teams = built.teams.teams_of(user)
    if args.json:
        print(json.dumps([t.to_json() for t in teams], indent=2))
    else:
        for team in teams:
            print(f"{team.name:<30} {team.role}")
    return 0


def run_create(args: argparse.Namespace) -> int:
    with services() as (built, user):
        built.teams.create(user, args.name)
    print(f"Created team '{args.name}'; you are its admin.")
    return 0


def run_members(args: argparse.Namespace) -> int:
    with services() as (built, user):
        members = built.teams.members(user, args.team)
    if args.json:
        print(json.dumps([m.to_json() for m in members], indent=2))
    else:
        for member in members:
            print(f"{member.username:<30} {member.role}")
    return 0


def run_add_member(args: argparse.Namespace) -> int:
    role = ADMIN if args.admin else MEMBER
    with services() as (built, user):
        built.teams.set_member(user, args.team, args.username, role)
    print(f"'{args.username}' is now {role} of team '{args.team}'.")
    return 0


def run_remove_member(args: argparse.Namespace) -> int:
    with services() as (built, user):
        built.teams.remove_member(user, args.team, args.username)
    print(f"Removed '{args.username}' from team '{args.team}'.")
    return 0

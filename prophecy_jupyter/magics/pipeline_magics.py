"""``%pipeline``: turn the notebook into a pipeline of a project and take it through Git."""

from __future__ import annotations

import argparse
import contextlib
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from prophecy_jupyter.errors import GitError
from prophecy_jupyter.magics.fabric_magics import FabricMagics, friendly_errors
from prophecy_jupyter.notebook_links import links_of_file

PIPELINE_USAGE = """Usage:
  %pipeline generate [--name NAME]   write this notebook's pipeline into your working copy (save first)
  %pipeline status                   changed files of your working copy
  %pipeline diff                     your changes against the last commit
  %pipeline commit -m MESSAGE        commit them as you
  %pipeline push                     push with your own token
  %pipeline pull                     rebase onto the remote branch (conflicts are listed, nothing lost)
Every command takes --project PROJECT; the default is the notebook's metadata.prophecy.project, or
your only project."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message}\n{PIPELINE_USAGE}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%pipeline", add_help=False)
    parser.add_argument("command", choices=["generate", "status", "diff", "commit", "push", "pull"])
    parser.add_argument("--project")
    parser.add_argument("--name")
    parser.add_argument("-m", "--message")
    return parser


class ProjectMagics(Magics):
    """Commands on the notebook's project (``%pipeline``, ``%job``), through the fabric magics'
    backend (the server's API, or services in the kernel): ``_<command>(project, args)`` each."""

    usage = ""

    def __init__(self, shell, fabric_magics: FabricMagics):
        super().__init__(shell)
        self.fabric_magics = fabric_magics

    @property
    def backend(self):
        return self.fabric_magics.backend

    def dispatch(self, line: str, parser: argparse.ArgumentParser) -> None:
        """Usage for ``help`` (or nothing), else the command on ``--project`` or the notebook's."""
        if line.strip() in ("", "help", "-h", "--help"):
            print(self.usage)
            return
        args = parser.parse_args(shlex.split(line))
        self.check(args)
        with friendly_errors(), git_errors():
            project = notebook_project(self.fabric_magics, args.project)
            getattr(self, f"_{args.command}")(project, args)

    def check(self, args: argparse.Namespace) -> None:
        """Refuse arguments that do not fit their command (UsageError)."""


@magics_class
class PipelineMagics(ProjectMagics):
    usage = PIPELINE_USAGE

    @line_magic
    def pipeline(self, line: str) -> None:
        """Generate this notebook's pipeline and commit and push it: see ``%pipeline help``."""
        self.dispatch(line, _parser())

    def _generate(self, project: str, args) -> None:
        path = self.fabric_magics.notebook_path
        if path is None or not path.is_file():
            raise UsageError(
                "This kernel does not know its notebook's file; use `jupyter prophecy pipeline generate`."
            )
        answer = self.backend.generate_pipeline(project, str(path), args.name)
        changed, pipeline = answer["changed"], answer["pipeline"]
        what = f"Pipeline '{pipeline['name']}' in project '{project}' ({pipeline['steps']} step(s))"
        print(
            f"{what}: "
            + (f"changed {', '.join(changed)}. See `%pipeline diff`." if changed else "no changes.")
        )

    def _status(self, project: str, args) -> None:
        status = self.backend.project_status(project)
        for note in status["notes"]:
            print(note)
        print(f"{status['project']} on {status['branch']}: {len(status['changes'])} change(s)")
        for change in status["changes"]:
            print(f"  {change['status']:<10} {change['path']}")

    def _diff(self, project: str, args) -> None:
        diff = self.backend.project_diff(project)
        print(diff or "No changes against the last commit.")

    def _commit(self, project: str, args) -> None:
        if not args.message:
            raise UsageError("%pipeline commit needs -m MESSAGE")
        commit = self.backend.project_commit(project, args.message)
        print(f"Committed {commit[:10]}; `%pipeline push` to share it." if commit else "Nothing to commit.")

    def _push(self, project: str, args) -> None:
        print(f"Pushed {self.backend.project_push(project)} of project '{project}'.")

    def _pull(self, project: str, args) -> None:
        print(f"Pulled {self.backend.project_pull(project)} of project '{project}'.")


def notebook_project(fabric_magics: FabricMagics, chosen: str | None) -> str:
    """The project a magic works on: ``chosen``, else the notebook's metadata's, else the user's
    only one."""
    if chosen:
        return chosen
    named = links_of_file(fabric_magics.notebook_path).project
    if named:
        return named
    projects = fabric_magics.backend.projects()
    if len(projects) == 1:
        return projects[0]["ref"]
    known = ", ".join(p["ref"] for p in projects) or "none yet (`jupyter prophecy project add`)"
    raise UsageError(f"Which project? Use --project NAME (yours: {known}).")


@contextlib.contextmanager
def git_errors():
    try:
        yield
    except GitError as exc:
        raise UsageError(str(exc)) from None

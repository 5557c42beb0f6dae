"""``%fabric`` with no argument: a fabric picker and the notebook's session panel (ipywidgets)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import ipywidgets as widgets
from IPython.core.error import UsageError

from prophecy_jupyter.errors import ProphecyError

if TYPE_CHECKING:
    from prophecy_jupyter.client.backend import Backend


class NotebookMagics(Protocol):
    """What the picker drives: the notebook's ``%fabric`` magics."""

    backend: Backend
    notebook_id: str

    @property
    def attached(self) -> str | None: ...

    def require_fabric(self) -> str: ...

    def fabric(self, line: str) -> None: ...


class FabricPicker(widgets.VBox):
    """Pick the notebook's fabric and watch its session: attach, detach, restart, logs."""

    def __init__(self, magics: NotebookMagics):
        self.magics = magics
        self.fabrics = widgets.Dropdown(description="Fabric", layout=widgets.Layout(width="auto"))
        self.attach_button = widgets.Button(description="Attach", button_style="primary", icon="plug")
        self.detach_button = widgets.Button(description="Detach", icon="unlink")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.restart_button = widgets.Button(description="Restart session", icon="repeat")
        self.logs_button = widgets.Button(description="Logs", icon="file-text")
        self.status = widgets.HTML()
        self.logs = widgets.Output(layout=widgets.Layout(max_height="16em", overflow="auto"))
        actions = {
            self.attach_button: self._attach,
            self.detach_button: self._detach,
            self.refresh_button: self.refresh,
            self.restart_button: self._restart,
            self.logs_button: self._show_logs,
        }
        for button, action in actions.items():
            button.on_click(lambda _, action=action: self._act(action))
        buttons = widgets.HBox(list(actions))
        super().__init__([self.fabrics, buttons, self.status, self.logs])
        self._act(self.refresh)

    def _act(self, action: Callable[[], None]) -> None:
        """Run a button's action; our errors are shown in the panel, never lost in a log."""
        try:
            action()
        except (ProphecyError, UsageError) as exc:
            self.status.value = f"<div style='color:var(--jp-error-color1)'>{html.escape(str(exc))}</div>"

    def refresh(self) -> None:
        """Reload the fabrics and the session's state."""
        attached = self.magics.attached
        choices = self.magics.backend.fabrics()
        self.fabrics.options = [
            (f"{fab['ref']} ({fab['kind']}, {fab['environment']})", fab["ref"]) for fab in choices
        ]
        if attached in {fab["ref"] for fab in choices}:
            self.fabrics.value = attached
        self.detach_button.disabled = attached is None
        self.restart_button.disabled = self.logs_button.disabled = attached is None
        self.status.value = self._describe(attached)

    def _describe(self, attached: str | None) -> str:
        if attached is None:
            return "Not attached: pick a fabric and press Attach; cells then run there."
        sessions = [s for s in self.magics.backend.status(self.magics.notebook_id) if s["state"] != "ended"]
        if not sessions or sessions[0]["remote_id"] is None:
            return f"Attached to <b>{html.escape(attached)}</b>; the first fabric cell starts a session."
        session = sessions[0]
        lines = [
            f"Attached to <b>{html.escape(attached)}</b>; session {html.escape(str(session['remote_id']))} "
            f"is <b>{html.escape(session['state'])}</b>"
        ]
        for run in session["runs"]:
            progress = "" if run["progress"] is None else f" {run['progress']:.0%}"
            lines.append(f"running: {html.escape(run.get('summary') or run['kind'])}{progress}")
        return "<br>".join(lines)

    def _attach(self) -> None:
        if self.fabrics.value is None:
            return
        self.logs.clear_output()
        with self.logs:
            self.magics.fabric(f"attach {self.fabrics.value}")
        self.refresh()

    def _detach(self) -> None:
        self.logs.clear_output()
        with self.logs:
            self.magics.fabric("detach")
        self.refresh()

    def _restart(self) -> None:
        fabric = self.magics.require_fabric()
        self.logs.clear_output()
        with self.logs:
            self.magics.backend.restart(self.magics.notebook_id, fabric, print)
        self.refresh()

    def _show_logs(self) -> None:
        self.logs.clear_output()
        with self.logs:
            self.magics.fabric("logs -n 50")

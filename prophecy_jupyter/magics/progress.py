"""Waiting for a run in a notebook: a live progress bar, and kernel interrupt as remote cancel."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prophecy_jupyter.client.backend import FIRST_WAIT

if TYPE_CHECKING:
    from prophecy_jupyter.client.backend import RunHandle

BAR_WIDTH = 30


def progress_bundle(fabric: str, progress: float | None, elapsed: float, note: str = "") -> dict:
    """A progress bar as HTML with a plain-text twin for consoles and logs."""
    label = f"{elapsed:.1f} s on {fabric}" + (f" · {note}" if note else "")
    if progress is None:
        text = f"[{'.' * BAR_WIDTH}] {label}"
        bar = "<progress style='width:20em'></progress>"
    else:
        filled = round(progress * BAR_WIDTH)
        text = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {progress:4.0%} {label}"
        bar = f"<progress style='width:20em' value='{progress:.3f}' max='1'></progress> {progress:.0%}"
    return {"text/plain": text, "text/html": f"<div>{bar} <span>{html.escape(label)}</span></div>"}


class ProgressWaiter:
    """Waits for a run, showing progress after ``show_after`` seconds and redrawing it every
    ``refresh`` seconds; Ctrl-C cancels remotely. A run from the server comes back from a submit
    that already waited until the bar was due, so a cell that ended by then asks nothing more; a
    longer one asks once per redraw, each a long poll answered early when the run ends."""

    def __init__(
        self,
        cancel: Callable[[RunHandle], None],
        fabric: str,
        show_after: float = FIRST_WAIT,
        refresh: float = 0.25,
        cancel_wait: float = 15.0,
    ):
        self.cancel = cancel
        self.fabric = fabric
        self.show_after = show_after
        self.refresh = refresh
        self.cancel_wait = cancel_wait

    def __call__(self, run: RunHandle) -> RunHandle:
        from IPython.display import display

        handle = None
        shown = None
        try:
            wait = max(0.0, self.show_after - run.elapsed)  # none left: the submit's answer waited
            while not (run.wait(wait) if wait else run.done):
                bundle = progress_bundle(self.fabric, run.progress, run.elapsed, run.detail or "")
                if handle is None:
                    handle = display(bundle, raw=True, display_id=True)
                elif bundle["text/plain"] != shown:
                    handle.update(bundle, raw=True)
                shown, wait = bundle["text/plain"], self.refresh
        except KeyboardInterrupt:
            self.cancel(run)
            if handle is not None:
                handle.update(progress_bundle(self.fabric, run.progress, run.elapsed, "cancelling"), raw=True)
            stopped = run.wait(self.cancel_wait)
            print(
                f"Cancelled the statement on fabric '{self.fabric}'."
                if stopped
                else f"Asked fabric '{self.fabric}' to cancel the statement; it is still stopping."
            )
            raise
        finally:
            if handle is not None:
                handle.update({"text/plain": ""}, raw=True)
        return run


CLUSTER_COMING_UP = frozenset({"PENDING", "RESTARTING"})


def watch_cluster(
    read: Callable[[], dict[str, str]],
    cluster: dict[str, str],
    timeout: float = 1800.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Show a starting cluster's state in place until it is up, fails or ``timeout`` passes."""
    from IPython.display import display

    started = time.monotonic()
    handle = None
    while cluster["state"] in CLUSTER_COMING_UP and time.monotonic() - started < timeout:
        waited = time.monotonic() - started
        label = f"Cluster {cluster['name'] or cluster['cluster_id']}: {cluster['state']}"
        label += f" ({cluster['message']})" if cluster["message"] else ""
        bundle = progress_bundle(cluster["name"] or cluster["cluster_id"], None, waited, label)
        if handle is None:
            handle = display(bundle, raw=True, display_id=True)
        else:
            handle.update(bundle, raw=True)
        sleep(min(5.0, 0.5 + waited / 10))
        cluster = read()
    if handle is not None:
        handle.update({"text/plain": ""}, raw=True)
    return cluster

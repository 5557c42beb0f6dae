"""prophecy-jupyter: attach notebooks to fabrics and turn the work into pipelines."""

from __future__ import annotations

from prophecy_jupyter._version import __version__

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def _jupyter_server_extension_points() -> list[dict]:
    """The Jupyter server extension (enabled on install by ``jupyter-config``)."""
    from prophecy_jupyter.app import ProphecyJupyter

    return [{"module": "prophecy_jupyter.app", "app": ProphecyJupyter}]


def _jupyter_labextension_paths() -> list[dict]:
    """The prebuilt JupyterLab extension (the sidebar), built into ``labextension/``."""
    return [{"src": "labextension", "dest": "prophecy-jupyter"}]


def load_ipython_extension(ipython) -> None:
    """``%load_ext prophecy_jupyter``: register the fabric magics."""
    from prophecy_jupyter.magics import register

    register(ipython)


def unload_ipython_extension(ipython) -> None:
    from prophecy_jupyter.magics import unregister

    unregister(ipython)

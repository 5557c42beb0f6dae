"""IPython integration: ``%load_ext prophecy_jupyter`` registers the fabric, send, pipeline and job
magics."""

from __future__ import annotations

import atexit

from prophecy_jupyter.client import connect
from prophecy_jupyter.magics.fabric_magics import FabricMagics
from prophecy_jupyter.magics.job_magics import JobMagics
from prophecy_jupyter.magics.pipeline_magics import PipelineMagics
from prophecy_jupyter.magics.send_magics import SendMagics

_registered: FabricMagics | None = None


def register(ipython) -> None:
    """Register the magics once per shell; the session service starts on first use."""
    global _registered
    if _registered is not None:
        return
    _registered = FabricMagics(ipython, connect)
    ipython.register_magics(_registered)
    sends = SendMagics(ipython, _registered)
    ipython.register_magics(sends)
    ipython.register_magics(PipelineMagics(ipython, _registered))
    ipython.register_magics(JobMagics(ipython, _registered))
    atexit.register(_registered.close)
    _registered.on_close(sends.close)


def unregister(ipython) -> None:
    global _registered
    if _registered is not None:
        _registered.close()
        _registered = None

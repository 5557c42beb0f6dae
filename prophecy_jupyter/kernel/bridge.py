"""An IPython kernel whose cells run on the notebook's attached fabric.

Cells starting with ``%`` (line or cell magics, such as ``%%local``, ``%%sql`` or ``%fabric``)
and ``!`` run as in IPython; every other cell is sent to the fabric as PySpark. A cell whose first
line is ``%%fabric NAME`` runs on that fabric instead of the notebook's default. Interrupting the
kernel cancels the remote statement; completions come from the remote interpreter.
"""

from __future__ import annotations

import re

from ipykernel.ipkernel import IPythonKernel

from prophecy_jupyter._version import __version__

_WORD_BEFORE_CURSOR = re.compile(r"[\w.]*$")
_FABRIC_LINE = re.compile(r"%%fabric[ \t]+(\S+)[ \t]*\n")


def routed(code: str) -> str:
    """The code IPython runs for a cell: itself for magics and shell escapes, else ``%%spark``."""
    stripped = code.lstrip()
    if not stripped or stripped.startswith(("%", "!")):
        return code
    return "%%spark\n" + code


class ProphecyKernel(IPythonKernel):
    implementation = "prophecy"
    implementation_version = __version__
    banner = "Prophecy: cells run on the notebook's fabric (%%local runs here; %fabric attach NAME)."

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.shell.run_line_magic("load_ext", "prophecy_jupyter")

    @property
    def _magics(self):
        return self.shell.magics_manager.registry["FabricMagics"]

    async def do_execute(
        self, code, silent, store_history=True, user_expressions=None, allow_stdin=False, **kwargs
    ):
        return await super().do_execute(
            routed(code), silent, store_history, user_expressions, allow_stdin, **kwargs
        )

    def do_complete(self, code, cursor_pos):
        """Remote completions for fabric cells; IPython's own for magics and %%local cells."""
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        named, start = None, 0
        if chosen := _FABRIC_LINE.match(code):
            named, start = chosen.group(1), chosen.end()
        elif routed(code) == code:
            return super().do_complete(code, cursor_pos)
        if cursor_pos < start:
            return super().do_complete(code, cursor_pos)
        magics = self._magics
        word = _WORD_BEFORE_CURSOR.search(code[:cursor_pos]).group(0)
        matches: list[str] = []
        try:
            fabric = magics.fabric_ref(named) if named else magics.attached
            if fabric is not None:
                matches = magics.backend.complete(
                    magics.notebook_id, fabric, code[start:], cursor_pos - start
                )
        except Exception as exc:  # completion must never break typing
            self.log.debug("remote completion failed: %s", exc)
        return {
            "status": "ok",
            "matches": matches,
            "cursor_start": cursor_pos - len(word),
            "cursor_end": cursor_pos,
            "metadata": {},
        }

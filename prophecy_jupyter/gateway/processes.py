"""Child processes of the gateway (interpreters, spark-submit): started and stopped alike."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

GATEWAY_TOKEN_ENV = "PROPHECY_GATEWAY_TOKEN"


def lower_priority(niceness: int) -> None:
    """Make the calling thread (and the processes it starts from now on) yield the CPU to the
    rest: on Linux a thread's niceness is its own, and a child inherits its parent thread's."""
    if niceness > 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness))


async def spawn(
    command: list[str], work_dir: str, extra_env: dict[str, str] | None = None, niceness: int = 0
):
    """Start a child in its own process group, output captured, without the gateway's token, at
    ``niceness`` below the gateway's priority.

    The child stays in the gateway's session: where the kernel groups CPU time by session
    (autogroup), a session of its own would take an equal share beside the gateway's and the
    server's whatever its niceness, and fifty busy interpreters would crowd out the server."""
    env = {k: v for k, v in os.environ.items() if k != GATEWAY_TOKEN_ENV}
    env.update(extra_env or {})
    if niceness > 0:
        command = ["nice", "-n", str(niceness), *command]
    return await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=work_dir,
        process_group=0,
    )


async def stop(process: asyncio.subprocess.Process, first: signal.Signals, grace: float) -> None:
    """Send ``first`` to the child's process group, then SIGKILL if it outlives ``grace`` seconds."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, first)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()

"""The embedded fabric's gateway process: started on first use, stopped when its owner exits."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.paths import private_dir, private_file
from prophecy_jupyter.services.settings import ServiceSettings

TOKEN_ENV = "PROPHECY_GATEWAY_TOKEN"
LOG_FILES_KEPT = 10


def rank_session_below(pid: int, niceness: int) -> None:
    """Rank the CPU group of ``pid``'s session (Linux's autogroup) ``niceness`` steps below the
    others, the server's among them.

    Where the kernel has such groups it shares the CPU between sessions first and by niceness only
    within one, so the gateway's session, busy with its JVM and interpreters, would take as large a
    share as the whole server. Inside the session the gateway's own niceness still ranks its HTTP
    loop above its JVM and interpreters. A kernel without autogroup has nothing to rank."""
    if niceness > 0:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(min(19, niceness)))


class LocalGateway:
    """Starts ``jupyter prophecy gateway`` on a free loopback port, with a random token."""

    def __init__(self, data_dir: Path, settings: ServiceSettings, startup_timeout: float = 60.0):
        self._log_dir = data_dir / "logs"
        self._archive_dir = data_dir / "class-archives"
        self._settings = settings
        self._startup_timeout = startup_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._url: str | None = None
        self._token: str | None = None
        self._work_dir: Path | None = None
        self.log_path: Path | None = None

    @property
    def pid(self) -> int | None:
        """The gateway's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def endpoint(self) -> tuple[str, str]:
        """URL and token of the running gateway, starting it if needed."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            assert self._url and self._token
            return self._url, self._token

    def _start(self) -> None:
        self._remove_work_dir()  # of a gateway that died on its own
        private_dir(self._log_dir)
        self._prune_logs()
        self.log_path = self._log_dir / f"local-gateway-{os.getpid()}-{int(time.time())}.log"
        token = secrets.token_urlsafe(32)
        read_end, write_end = os.pipe()
        command = [
            sys.executable,
            "-m",
            "prophecy_jupyter.cli.gateway_command",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--parent-pid",
            str(os.getpid()),
            "--ready-fd",
            str(write_end),
            "--idle-skip-busy",
            "--isolation",
            self._settings.local_isolation,
            "--driver-memory",
            self._settings.local_driver_memory,
        ]
        if self._settings.local_idle_stop > 0:
            command += ["--exit-when-idle", str(self._settings.local_idle_stop)]
        if self._settings.local_niceness > 0:
            command += ["--nice", str(self._settings.local_niceness)]
        if self._settings.warms_local_fabric:
            command.append("--spare-interpreter")
        if self._settings.keeps_class_archive:
            command += ["--class-archive", str(self._archive_dir)]
        if self._settings.local_max_sessions:
            command += ["--max-sessions", str(self._settings.local_max_sessions)]
        env = {**os.environ, TOKEN_ENV: token}
        with open(private_file(self.log_path), "ab") as log:
            self._process = subprocess.Popen(
                command,
                pass_fds=(write_end,),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        rank_session_below(self._process.pid, self._settings.local_niceness)
        os.close(write_end)
        try:
            ready = self._read_ready(read_end)
        finally:
            os.close(read_end)
        self._url, self._token = f"http://127.0.0.1:{ready['port']}", token
        self._work_dir = _gateway_work_dir(ready.get("work_dir"))
        atexit.register(self.stop)

    def _read_ready(self, fd: int) -> dict:
        deadline = time.monotonic() + self._startup_timeout
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(remaining, 0))
            chunk = os.read(fd, 4096) if readable else b""
            if not chunk:
                self.stop()
                reason = "did not start in time" if remaining <= 0 or not readable else "exited"
                raise EngineError(f"The local gateway {reason}; see its log at {self.log_path}.")
            buffer += chunk
        return json.loads(buffer.split(b"\n", 1)[0])

    def _prune_logs(self) -> None:
        logs = sorted(self._log_dir.glob("local-gateway-*.log"), key=lambda p: p.stat().st_mtime)
        for old in logs[:-LOG_FILES_KEPT]:
            with contextlib.suppress(OSError):
                old.unlink()

    def stop(self) -> None:
        """Stop the gateway (and with it every local session)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._remove_work_dir()

    def _remove_work_dir(self) -> None:
        """A gateway removes its work folder (its JVMs' files) as it stops; one that was killed, or
        died, could not."""
        folder, self._work_dir = self._work_dir, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _gateway_work_dir(reported: str | None) -> Path | None:
    """The work folder the gateway said it made, if it is one a gateway makes: a folder of its own
    in the temporary folder it shares with this process."""
    if not reported:
        return None
    folder = Path(reported)
    return folder if folder.parent == Path(tempfile.gettempdir()) and folder.name else None

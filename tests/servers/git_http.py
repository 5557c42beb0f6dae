"""A real smart-HTTP Git server for tests: ``git http-backend`` behind a small WSGI wrapper that
checks HTTP Basic credentials, on a free loopback port.

Repositories are bare repositories under ``root``; ``users`` maps a token to the user name the
server expects with it (``None``: any user name, as GitHub and Azure DevOps accept). Every request
is logged with its method, path and the user name it carried (never the token).
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

BACKEND = "/usr/lib/git-core/git-http-backend"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class GitHttpServer:
    def __init__(self, root: Path, users: dict[str, str | None] | None = None):
        self.root = root
        self.users: dict[str, str | None] = dict(users or {})
        self.requests: list[dict[str, Any]] = []
        self.server = None
        self.url = ""

    def create_repository(self, name: str, branch: str = "main") -> str:
        """A bare repository with one commit on ``branch``; its clone URL."""
        bare = self.root / f"{name}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", branch, str(bare)], check=True)
        seed = self.root / f"{name}-seed"
        env = {
            "GIT_AUTHOR_NAME": "seed",
            "GIT_AUTHOR_EMAIL": "seed@example.com",
            "GIT_COMMITTER_NAME": "seed",
            "GIT_COMMITTER_EMAIL": "seed@example.com",
            "HOME": str(self.root),
        }
        subprocess.run(["git", "init", "-q", "-b", branch, str(seed)], check=True)
        (seed / "README.md").write_text(f"# {name}\n")
        for args in (
            ["add", "README.md"],
            ["commit", "-q", "-m", "Start"],
            ["push", "-q", str(bare), branch],
        ):
            subprocess.run(["git", "-C", str(seed), *args], check=True, env=env)
        return f"{self.url}/{name}.git"

    def start(self, port: int = 0) -> GitHttpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.server = make_server(
            "127.0.0.1", port, self._app, server_class=_ThreadingServer, handler_class=_Quiet
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, name="git-http", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def _user(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, token = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        if token not in self.users:
            return None
        expected = self.users[token]
        return user if expected is None or expected == user else None

    def _app(self, environ: dict[str, Any], start_response) -> list[bytes]:
        user = self._user(environ.get("HTTP_AUTHORIZATION", ""))
        self.requests.append(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ.get("PATH_INFO", ""),
                "user": user,
                "query": environ.get("QUERY_STRING", ""),
            }
        )
        if user is None:
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")],
            )
            return [b"Authentication required\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
        }
        done = subprocess.run([BACKEND], input=body, capture_output=True, env=cgi, timeout=120)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _ and b"\n\n" in done.stdout:
            head, _, payload = done.stdout.partition(b"\n\n")
        status, headers = "200 OK", []
        for line in head.decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        start_response(status, headers)
        return [payload]


@contextlib.contextmanager
def served_project(services: Any, folder: Path, name: str, token: str, user: str) -> Iterator[GitHttpServer]:
    """A repository served from ``folder``, made project ``name`` of team default with ``user``'s
    ``token`` (a GitHub-style one); the server stops on exit."""
    server = GitHttpServer(folder, {token: "x-access-token"}).start()
    try:
        url = server.create_repository(name)
        services.projects.create(user, "default", {"name": name, "url": url, "provider": "github"})
        services.projects.set_token(user, name, token)
        yield server
    finally:
        server.stop()


def main() -> None:
    """Serve seeded repositories until stopped (the browser tests start it this way)."""
    import argparse
    import os
    import signal
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--repository",
        action="append",
        required=True,
        help="name of a repository to create (repeat for several)",
    )
    args = parser.parse_args()
    token = os.environ["GIT_TEST_TOKEN"]  # from the environment, never argv
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    with tempfile.TemporaryDirectory(prefix="git-http-") as root:
        server = GitHttpServer(Path(root), {token: None}).start(args.port)
        for name in args.repository:
            print(server.create_repository(name), flush=True)
        signal.sigwait(stop)
        server.stop()


if __name__ == "__main__":
    main()

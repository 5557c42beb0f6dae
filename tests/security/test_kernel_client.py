"""The kernel's client of the Jupyter server: its token is its only credential (no ~/.netrc entry
for the server's host goes along), and it reads proxies from the environment once, when it starts,
not on every call."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from prophecy_jupyter.client.link import KERNEL_HEADER
from prophecy_jupyter.client.rest import ServerBackend


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``{}`` and keeps the headers it was sent."""

    seen: list[dict[str, str]] = []

    def do_GET(self):
        Recorder.seen.append(dict(self.headers))
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    served = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    served.daemon_threads = True
    threading.Thread(target=served.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{served.server_address[1]}"
    served.shutdown()
    served.server_close()


def test_no_netrc_credential_goes_to_the_server(server, tmp_path, monkeypatch):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    backend = ServerBackend(server, "kernel-token")
    backend.get("/fabrics")
    backend.close()
    [headers] = Recorder.seen
    assert headers.get(KERNEL_HEADER) == "kernel-token"
    assert "Authorization" not in headers, "a ~/.netrc password was sent to the server"


def test_proxies_are_read_once_when_the_client_starts(server, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    backend = ServerBackend(server, "kernel-token")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    assert backend.get("/fabrics") == {}
    backend.close()
    assert len(Recorder.seen) == 1

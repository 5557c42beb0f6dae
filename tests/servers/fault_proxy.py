"""An HTTP proxy that injects faults in front of a Livy server, and logs what passed.

Rules match a method and a path pattern and apply to the next ``times`` matching requests:

* ``drop_before``   close the connection without forwarding (the server never sees it)
* ``drop_after``    forward, then close the connection without answering (ambiguous)
* ``status_before`` answer ``status`` without forwarding
* ``status_after``  forward, then answer ``status`` instead of the server's answer
* ``delay_before``  wait ``delay`` seconds, then forward
* ``delay_after``   forward, then wait ``delay`` seconds before answering
* ``reply``         answer ``status`` with the JSON ``body`` without forwarding
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass
class Rule:
    method: str
    path: str
    action: str
    times: int = 1
    status: int = 503
    delay: float = 0.0
    body: Any = None

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and re.search(self.path, path) is not None


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    action: str | None
    at: float
    answered_at: float = 0.0


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        assert self.server
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def add(self, method: str, path: str, action: str, **options: Any) -> Rule:
        rule = Rule(method, path, action, **options)
        with self.lock:
            self.rules.append(rule)
        return rule

    def take_rule(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def requests_to(self, method: str, pattern: str) -> list[Logged]:
        with self.lock:
            return [e for e in self.log if e.method == method and re.search(pattern, e.path)]

    def start(self, tls: ssl.SSLContext | None = None) -> FaultProxy:
        proxy = self

        upstream_http = requests.Session()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                rule = proxy.take_rule(self.command, self.path)
                entry = Logged(
                    self.command,
                    self.path,
                    dict(self.headers),
                    body,
                    rule.action if rule else None,
                    time.monotonic(),
                )
                with proxy.lock:
                    proxy.log.append(entry)
                action = rule.action if rule else "forward"
                if action == "drop_before":
                    self.close_connection = True
                    return
                if action in ("status_before", "reply"):
                    payload = rule.body if action == "reply" else {"msg": "injected failure"}
                    self._answer(
                        rule.status if action == "status_before" else 200, json.dumps(payload).encode()
                    )
                    entry.answered_at = time.monotonic()
                    return
                if action == "delay_before":
                    time.sleep(rule.delay)
                upstream = upstream_http.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=raw or None,
                    timeout=120,
                    headers={
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                    },
                )
                if action == "drop_after":
                    self.close_connection = True
                    return
                if action == "delay_after":
                    time.sleep(rule.delay)
                if action == "status_after":
                    self._answer(rule.status, b'{"msg": "injected failure after forwarding"}')
                else:
                    self._answer(
                        upstream.status_code,
                        upstream.content,
                        upstream.headers.get("Content-Type", "application/json"),
                    )
                entry.answered_at = time.monotonic()

            def _answer(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
